#!/usr/bin/env bash
# Start a three-node Tidings cluster on this machine, on local PostgreSQL and Redis,
# behind HAProxy (deploy/haproxy.cfg with local ports, without TLS): for trying the
# cluster and for `tidings bench --url http://127.0.0.1:8100`. Ctrl-C stops it all.
#   deploy/local-cluster.sh [DATABASE_URL] [REDIS_URL]
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-postgresql://postgres@127.0.0.1:5432/tidings_cluster}
REDIS=${2:-redis://127.0.0.1:6379/0}
LB_PORT=${LB_PORT:-8100}
WORK=$(mktemp -d)
export TIDINGS_DATABASE_URL=$DB TIDINGS_REDIS_URL=$REDIS TIDINGS_REDIS_PREFIX=local-cluster
export TIDINGS_ADMIN_PASSWORD=${TIDINGS_ADMIN_PASSWORD:-cluster-admin-password}
export TIDINGS_LOG_LEVEL=warning
# every node needs the same server key (docs/security.md, Server keys); this one is for trying
export TIDINGS_SECRET_KEYS=${TIDINGS_SECRET_KEYS:-local-cluster-key-for-trying-only-not-production}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$WORK"' EXIT
servers=""
for i in 1 2 3; do
  port=$((LB_PORT + i))
  TIDINGS_NODE_NAME=node$i .venv/bin/tidings serve --data-dir "$WORK/node$i" --port "$port" \
    >"$WORK/node$i.log" 2>&1 &
  pids+=($!)
  echo "node$i: pid $! port $port"
  servers+="    server node$i 127.0.0.1:$port check\n"
  sleep 1   # the first node migrates and creates the owner
done
for i in 1 2 3; do
  until curl -sf "http://127.0.0.1:$((LB_PORT + i))/readyz" >/dev/null; do sleep 0.2; done
done
python3 - "$WORK/haproxy.cfg" "$LB_PORT" "$servers" <<'PY'
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
haproxy -db -f "$WORK/haproxy.cfg" &
pids+=($!)
echo "cluster ready: http://127.0.0.1:$LB_PORT (admin / \$TIDINGS_ADMIN_PASSWORD); node pids: ${pids[*]:0:3}"
wait
