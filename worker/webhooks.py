"""The webhook deliverer: a thread in every worker that posts the outbox's due deliveries.

Each delivery is claimed with a conditional UPDATE (one worker sends it), its body fixed at
the first attempt (every retry sends the same bytes), signed with the owner's secret, and
posted to the address the URL policy just checked, never one resolved again afterwards.
A 2xx delivers it; anything else is retried with exponential backoff until
`webhook_retry_seconds` after the event, then given up. Every attempt is kept on the row.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx

from core import outbox
from core.db import session_factory, session_scope
from core.errors import Invalid
from core.job_view import job_document
from core.settings import Settings
from core.tables import Job, WebhookDelivery, utcnow
from core.webhook_secrets import SIGNATURE_HEADER, current_secret, signature_header
from core.webhook_urls import IPAddress, WebhookPolicy, WebhookUrl

log = logging.getLogger("dyngen.webhooks")
USER_AGENT = "dyngen-webhooks/1"
OUTAGE_WAIT_SECONDS = 10.0  # between tries while the database is unreachable
CLAIM_MARGIN_SECONDS = 30.0  # beyond the POST's time-out, before a claimed delivery is due again


class Deliverer:
    """Posts due deliveries now and every `webhook_poll_seconds`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions = session_factory(settings.db_url, settings.connect_timeout)
        self.policy = WebhookPolicy(
            settings.webhook_allow_private, settings.webhook_allowed_networks
        )
        self.backoff = outbox.Backoff(
            settings.webhook_backoff_seconds,
            settings.webhook_max_backoff_seconds,
            settings.webhook_retry_seconds,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhook-deliverer", daemon=True)
        # one client for all POSTs: building one (its TLS context) costs more than a POST
        self._http = httpx.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
        )

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it ends after the POST in flight, if any)."""
        self._stop.set()
        self._thread.join(timeout=self.settings.webhook_timeout_seconds + 5)
        if not self._thread.is_alive():
            self._http.close()

    def deliver_due(self) -> int:
        """Attempt every delivery now due that no other worker took; returns how many."""
        with session_scope(self.sessions) as session:
            due = outbox.due_deliveries(session=session)
        hold = self.settings.webhook_timeout_seconds + CLAIM_MARGIN_SECONDS
        attempted = 0
        for delivery_id in due:
            if self._stop.is_set():
                break
            with session_scope(self.sessions) as session:
                if not outbox.claim_delivery(
                    session=session, delivery_id=delivery_id, hold_seconds=hold
                ):
                    continue
            self.attempt(delivery_id)
            attempted += 1
        return attempted

    def attempt(self, delivery_id: int) -> None:
        """One POST of a claimed delivery, and its outcome written back."""
        with session_scope(self.sessions) as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None:
                return  # its job was deleted meanwhile, and its deliveries with it
            job = session.get_one(Job, delivery.job_id)
            if delivery.payload is None:
                delivery.payload = job_document(session=session, job=job).decode()
            secret = current_secret(session=session, owner_id=job.owner_id)
            url, body, event = delivery.url, delivery.payload.encode(), delivery.event
            number = len(delivery.attempts) + 1
        # posted outside any session: a slow receiver holds no database connection
        result = self.post(
            url, body, secret, {"Dyngen-Event": event, "Dyngen-Delivery": str(delivery_id)}
        )
        result = {"attempt": number, **result}
        with session_scope(self.sessions) as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None:
                return
            outbox.record_attempt(
                session=session, delivery=delivery, attempt=result, backoff=self.backoff
            )
            status = delivery.status
        log.info(
            "webhook %s (%s) attempt %d: %s", delivery_id, event, number, _outcome(result, status)
        )

    def post(
        self, url: str, body: bytes, secret: str | None, extra: dict[str, str]
    ) -> dict[str, Any]:
        """POST the signed body; what happened, as an attempt record."""
        began, at = time.monotonic(), utcnow()
        record: dict[str, Any] = {"at": at.isoformat().replace("+00:00", "Z"), "status_code": None}
        try:
            if secret is None:
                raise Invalid("the job's API key has no webhook secret; rotate one to make it")
            parts, addresses = self.policy.addresses(url)
            status = self._send(parts, addresses[0], body, secret, extra)
            record |= {"status_code": status, "ok": 200 <= status < 300}
            if not record["ok"]:
                record["error"] = f"the receiver answered {status}"
        except Invalid as err:
            record |= {"ok": False, "error": err.message}
        except httpx.HTTPError as err:
            record |= {"ok": False, "error": f"{type(err).__name__}: {err}"[:500]}
        except Exception as err:  # recorded like any failure, so the retries stay bounded
            log.exception("webhook POST to %s failed unexpectedly", url[:200])
            record |= {"ok": False, "error": f"{type(err).__name__}: {err}"[:500]}
        record["seconds"] = round(time.monotonic() - began, 3)
        return record

    def _send(
        self,
        parts: WebhookUrl,
        address: IPAddress,
        body: bytes,
        secret: str,
        extra: dict[str, str],
    ) -> int:
        # Connect to the checked address; the Host header (and TLS's server name) keep the
        # URL's host name, so virtual hosts and certificates work as with the name.
        literal = f"[{address}]" if address.version == 6 else str(address)
        default = 443 if parts.scheme == "https" else 80
        host = parts.host if parts.port == default else f"{parts.host}:{parts.port}"
        headers = {
            "Host": host,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
            **extra,
        }
        extensions = {"sni_hostname": parts.host} if parts.scheme == "https" else {}
        url = f"{parts.scheme}://{literal}:{parts.port}{parts.target}"
        # streamed and never read: only the status counts, and a receiver answering with
        # gigabytes costs the worker nothing
        with self._http.stream(
            "POST", url, content=body, headers=headers, extensions=extensions
        ) as response:
            return response.status_code

    def _loop(self) -> None:
        poll = self.settings.webhook_poll_seconds
        while not self._stop.is_set():
            try:
                self.deliver_due()
                wait = poll
            except Exception as err:
                log.warning("webhooks: could not deliver (%s); will try again", err)
                wait = max(poll, OUTAGE_WAIT_SECONDS)  # one line per outage, not per second
            self._stop.wait(wait)


def _outcome(result: dict[str, Any], status: str) -> str:
    said = result.get("status_code") or result.get("error")
    return f"{said} -> {status}"
