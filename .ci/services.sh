#!/usr/bin/env bash
# Start PostgreSQL (127.0.0.1:5432, database `test`) and Redis (127.0.0.1:6379) where they
# are not already running, and say clearly what is missing on a machine that has neither.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 30); do port_open "$1" && return 0; sleep 1; done
  return 1
}

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  wait_port 5432 || { echo "services: PostgreSQL is not running on 127.0.0.1:5432 and could not be started (install postgresql)" >&2; exit 1; }
fi
if command -v psql >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
fi

if ! port_open 6379; then
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
  wait_port 6379 || { echo "services: Redis is not running on 127.0.0.1:6379 and could not be started (install redis-server)" >&2; exit 1; }
fi

if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) >/dev/null 2>&1 \
      || echo "services: could not install docker-compose; the compose-file test will skip" >&2
  fi
fi
# the browser tests drive Debian's chromium (never a browser build of Playwright's own)
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "services: could not install chromium; the browser tests will skip" >&2
fi
echo "services: PostgreSQL and Redis are up"
