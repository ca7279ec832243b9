"""`python -m benchmarks.webhooks`: how soon a webhook arrives after a job ends, and how many
deliveries one worker's deliverer posts a second (issue 19).

Needs PostgreSQL on 127.0.0.1:5432 (database `test`; a scratch schema is made and dropped).
A real HTTP receiver on 127.0.0.1 answers 200; the deliverer runs as in a worker, a thread
polling every DYNGEN_WEBHOOK_POLL_SECONDS (default 1 s).
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks.api_extras import scratch_database
from core import jobs
from core.db import session_factory, session_scope
from core.settings import Settings
from core.webhook_secrets import rotate_secret
from worker.webhooks import Deliverer


@contextmanager
def receiver() -> Iterator[tuple[str, list[float]]]:
    """A local HTTP server answering 200; its URL and the arrival time of each POST."""
    arrivals: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrivals.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", arrivals
    finally:
        server.shutdown()
        server.server_close()


def finish_job(settings: Settings, url: str) -> None:
    """A job with a webhook, claimed and finished as a worker would: one outbox row."""
    sessions = session_factory(settings.db_url)
    webhook = {"url": url, "events": ["completed"]}
    with session_scope(sessions) as session:
        job = jobs.create_job(
            session=session, owner_id=None, type="train", config={}, seed=0, webhook=webhook
        )
        jobs.claim_job(session=session, job_id=job.id, worker="bench", lease_seconds=60)
    with session_scope(sessions) as session:
        jobs.finish_job(session=session, job_id=job.id, worker="bench", status="succeeded")


def latency(settings: Settings, url: str, arrivals: list[float], count: int) -> list[float]:
    """Seconds from each job's finishing commit to its webhook's arrival (deliverer polling)."""
    deliverer = Deliverer(settings)
    deliverer.start()
    seen = []
    try:
        for _ in range(count):
            # jobs end at random moments, not just after the deliverer's last poll
            time.sleep(random.uniform(0, settings.webhook_poll_seconds))
            before = len(arrivals)
            finished = time.monotonic()
            finish_job(settings, url)
            while len(arrivals) == before:
                time.sleep(0.001)
            seen.append(arrivals[-1] - finished)
    finally:
        deliverer.stop()
    return seen


def throughput(settings: Settings, url: str, arrivals: list[float], count: int) -> float:
    """Deliveries a second, `count` of them due at once, posted by one deliverer."""
    for _ in range(count):
        finish_job(settings, url)
    deliverer, before, began = Deliverer(settings), len(arrivals), time.monotonic()
    while len(arrivals) - before < count:
        deliverer.deliver_due()
    return count / (time.monotonic() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20, help="jobs timed one after another")
    parser.add_argument("--burst", type=int, default=200, help="deliveries due at once")
    args = parser.parse_args()
    with scratch_database() as url, receiver() as (hook, arrivals):
        settings = Settings(database_url=url, webhook_allowed_networks="127.0.0.1")
        with session_scope(session_factory(url)) as session:
            rotate_secret(session=session, owner_id=None)
        waits = sorted(latency(settings, hook, arrivals, args.jobs))
        rate = throughput(settings, hook, arrivals, args.burst)
    p95 = waits[min(len(waits) - 1, round(0.95 * len(waits)))]
    print(
        f"| job finished -> webhook received ({args.jobs} jobs, poll 1 s) | median "
        f"{statistics.median(waits):.2f} s, p95 {p95:.2f} s, max {waits[-1]:.2f} s |"
    )
    print(f"| {args.burst} deliveries due at once, one deliverer | {rate:.0f} deliveries/s |")


if __name__ == "__main__":
    main()
