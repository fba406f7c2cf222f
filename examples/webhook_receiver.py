"""A receiver of Tidings webhooks: checks each delivery's signature and timestamp, drops
repeats, and prints every event it accepts as one JSON line.

Standard library only, so it runs wherever Python 3.11+ does:

    TIDINGS_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 9000

then register http://<this host>:9000/ as a webhook (Admin → Webhooks in the web client,
or POST /api/v1/webhooks) with the secret it gave you. docs/integrations.md explains the
headers; tests/integration/api/test_webhook_example.py runs this file against a real
delivery.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import sys
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

TOLERANCE_SECONDS = 300  # how far a delivery's timestamp may be from this clock
MAX_BODY_BYTES = 1024 * 1024
SEEN_KEEP = 10_000  # delivery ids remembered, to answer a retry without acting twice


def signature_ok(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """X-Tidings-Signature is "sha256=" + hex HMAC-SHA256(secret, "<timestamp>.<body>")."""
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), signature)


def fresh(timestamp: str, tolerance: float) -> bool:
    """The timestamp is a Unix time within `tolerance` seconds of now: a delivery
    recorded by someone in between cannot be replayed later."""
    try:
        return abs(time.time() - int(timestamp)) <= tolerance
    except ValueError:
        return False


class Receiver(BaseHTTPRequestHandler):
    secret = ""
    tolerance = float(TOLERANCE_SECONDS)
    seen: ClassVar[OrderedDict[str, None]] = OrderedDict()

    def do_POST(self) -> None:  # the http.server API names it so
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return self._answer(413, "too large")
        body = self.rfile.read(length)
        timestamp = self.headers.get("X-Tidings-Timestamp", "")
        signature = self.headers.get("X-Tidings-Signature", "")
        if not signature_ok(self.secret, timestamp, body, signature):
            return self._answer(401, "bad signature")
        if not fresh(timestamp, self.tolerance):
            return self._answer(401, "stale timestamp")
        delivery = self.headers.get("X-Tidings-Delivery", "")
        if delivery in self.seen:  # a retry of one already handled: say yes, do nothing
            return self._answer(200, "duplicate")
        try:
            event = json.loads(body)
        except ValueError:
            return self._answer(400, "not JSON")
        self.seen[delivery] = None
        while len(self.seen) > SEEN_KEEP:
            self.seen.popitem(last=False)
        kind = self.headers.get("X-Tidings-Event", "")
        line = {"delivery": delivery, "kind": kind, "event": event}
        print(json.dumps(line, ensure_ascii=False), flush=True)
        return self._answer(200, "ok")

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--tolerance", type=float, default=TOLERANCE_SECONDS)
    args = parser.parse_args()
    secret = os.environ.get("TIDINGS_WEBHOOK_SECRET", "")
    if not secret:
        parser.error("set TIDINGS_WEBHOOK_SECRET to the webhook's secret")
    Receiver.secret, Receiver.tolerance = secret, args.tolerance
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on {args.host}:{server.server_port}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
