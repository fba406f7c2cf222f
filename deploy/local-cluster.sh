#!/usr/bin/env bash
# Start a three-node Tidings cluster on this machine, on local PostgreSQL and Redis,
# behind HAProxy (deploy/haproxy.cfg with local ports, without TLS): for trying the
# cluster and for `tidings bench --url http://127.0.0.1:8100`. Ctrl-C stops it all.
#   deploy/local-cluster.sh [DATABASE_URL] [REDIS_URL]
# The database is created when it does not exist (the URL's user must be allowed to).
# Environment: LB_PORT (8100; the nodes listen on the three ports after it),
# START_TIMEOUT (60: seconds each node has to become ready), TIDINGS_ADMIN_PASSWORD,
# TIDINGS_REDIS_PREFIX (local-cluster).
# A node that exits or is not ready in time stops everything: its log's last lines are
# printed, every log is kept (the directory is named), and the exit status is 1.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-postgresql://postgres@127.0.0.1:5432/tidings_cluster}
REDIS=${2:-redis://127.0.0.1:6379/0}
LB_PORT=${LB_PORT:-8100}
START_TIMEOUT=${START_TIMEOUT:-60}
TIDINGS=${TIDINGS:-.venv/bin/tidings}
PYTHON=${PYTHON:-.venv/bin/python}
export TIDINGS_DATABASE_URL=$DB TIDINGS_REDIS_URL=$REDIS
export TIDINGS_REDIS_PREFIX=${TIDINGS_REDIS_PREFIX:-local-cluster}
export TIDINGS_ADMIN_PASSWORD=${TIDINGS_ADMIN_PASSWORD:-cluster-admin-password}
export TIDINGS_LOG_LEVEL=warning
# every node needs the same server key (docs/security.md, Server keys); this one is for trying
export TIDINGS_SECRET_KEYS=${TIDINGS_SECRET_KEYS:-local-cluster-key-for-trying-only-not-production}

fail() { echo "local-cluster: error: $*" >&2; exit 1; }

[[ $START_TIMEOUT =~ ^[0-9]+$ ]] || fail "START_TIMEOUT must be a number of seconds, not '$START_TIMEOUT'"
[[ -x $TIDINGS ]] || fail "$TIDINGS not found: run this from a checkout with its .venv (README), or set TIDINGS"
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || fail "haproxy is not installed (apt-get install haproxy)"
command -v curl >/dev/null || fail "curl is not installed"

# The database: reachable, and created if missing (one line when neither can be done).
"$PYTHON" - "$DB" <<'PY' || exit 1
import asyncio, re, sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg

url = sys.argv[1].replace("postgresql+asyncpg://", "postgresql://", 1)
parts = urlsplit(url)
name = parts.path.lstrip("/")
where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def fail(message: str) -> None:
    print(f"local-cluster: error: {message}", file=sys.stderr)
    sys.exit(1)


if parts.scheme not in ("postgresql", "postgres") or not name:
    fail("DATABASE_URL must look like postgresql://USER@HOST:PORT/NAME")
if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
    fail(f"database name {name!r}: use letters, digits and _ (or create it yourself)")


async def main() -> None:
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    try:
        conn = await asyncpg.connect(maintenance, timeout=5)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        fail(
            f"cannot connect to PostgreSQL at {where} ({type(exc).__name__}: {exc}):"
            " start it, or pass another DATABASE_URL"
        )
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            print(f"database {name} at {where}: exists")
            return
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.PostgresError as exc:
            fail(f"cannot create the database {name} at {where}: {exc}")
        print(f"database {name} at {where}: created")
    finally:
        await conn.close()


asyncio.run(main())
PY

WORK=$(mktemp -d)
pids=()
keep_logs=0
cleanup() {
  status=$?
  trap - EXIT INT TERM
  if ((${#pids[@]})); then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  if ((keep_logs)); then
    echo "local-cluster: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

node_failed() {  # node_failed NODE WHY: its log's tail, logs kept, exit 1
  keep_logs=1
  echo "local-cluster: error: $1 $2; the last lines of $WORK/$1.log:" >&2
  if [[ -s $WORK/$1.log ]]; then
    tail -n 40 "$WORK/$1.log" | sed 's/^/  | /' >&2
  else
    echo "  | (nothing)" >&2
  fi
  exit 1
}

start_node() {  # start_node I
  local port=$((LB_PORT + $1))
  TIDINGS_NODE_NAME=node$1 "$TIDINGS" serve --data-dir "$WORK/node$1" --port "$port" \
    >"$WORK/node$1.log" 2>&1 &
  pids[$1 - 1]=$!
  echo "node$1: pid $! port $port"
}

wait_ready() {  # wait_ready NAME PID PORT: until /readyz answers 200 there, NAME exits, or time is up
  local name=$1 pid=$2 port=$3 deadline=$((SECONDS + START_TIMEOUT))
  until curl -sf --max-time 2 "http://127.0.0.1:$port/readyz" >/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      local code=0
      wait "$pid" || code=$?
      node_failed "$name" "exited with status $code before it was ready"
    fi
    if ((SECONDS >= deadline)); then
      local why
      why=$(curl -s --max-time 2 "http://127.0.0.1:$port/readyz" || true)
      node_failed "$name" "was not ready within ${START_TIMEOUT}s (START_TIMEOUT): /readyz said ${why:-nothing}"
    fi
    sleep 0.2
  done
}

servers=""
for i in 1 2 3; do
  servers+="    server node$i 127.0.0.1:$((LB_PORT + i)) check\n"
done
start_node 1
wait_ready node1 "${pids[0]}" $((LB_PORT + 1))  # it migrates and creates the owner
start_node 2
start_node 3
wait_ready node2 "${pids[1]}" $((LB_PORT + 2))
wait_ready node3 "${pids[2]}" $((LB_PORT + 3))

"$PYTHON" - "$WORK/haproxy.cfg" "$LB_PORT" "$servers" <<'PY'
import sys
path, port, servers = sys.argv[1], sys.argv[2], sys.argv[3].replace("\\n", "\n")
text = open("deploy/haproxy.cfg").read()
start, end = text.index("    # nodes-begin"), text.index("    # nodes-end")
text = text[:start] + servers + text[end:]
tls = ("    bind :443 ssl crt /etc/tidings/tls/tidings.pem alpn http/1.1\n    bind :80\n"
       "    http-request redirect scheme https code 301 if !{ ssl_fc }\n")
text = text.replace(tls, f"    bind 127.0.0.1:{port}\n").replace("maxconn 100000", "maxconn 9000")
open(path, "w").write(text)
PY
ulimit -n 65536 2>/dev/null || true
PATH=$PATH:/usr/sbin haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
pids[3]=$!
wait_ready haproxy "${pids[3]}" "$LB_PORT"  # listening, and its checks found a node up
echo "cluster ready: http://127.0.0.1:$LB_PORT (admin / \$TIDINGS_ADMIN_PASSWORD); node pids: ${pids[*]:0:3}"

# Until Ctrl-C, or until one of them stops: then say which, with its log.
names=(node1 node2 node3 haproxy)
code=0
wait -n -p done "${pids[@]}" || code=$?
for i in "${!pids[@]}"; do
  if [[ ${pids[$i]} == "$done" ]]; then
    node_failed "${names[$i]}" "stopped with status $code"
  fi
done
