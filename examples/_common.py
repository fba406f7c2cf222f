"""Shared start-up for the example bots: where the server is and how the bot logs in.

Configuration, from the command line or the environment:

    --url       TIDINGS_URL            (default http://127.0.0.1:8080)
    --token     TIDINGS_BOT_TOKEN      a bot token (``tidings bot create NAME``)
    --username  TIDINGS_BOT_USERNAME   or log in with a password instead
    --password  TIDINGS_BOT_PASSWORD
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

try:
    import tidings.sdk  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from tidings.sdk.bot import Bot


def make_bot(description: str) -> Bot:
    """Parse the arguments and build an (unstarted) bot."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", default=os.environ.get("TIDINGS_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("TIDINGS_BOT_TOKEN"))
    parser.add_argument("--username", default=os.environ.get("TIDINGS_BOT_USERNAME"))
    parser.add_argument("--password", default=os.environ.get("TIDINGS_BOT_PASSWORD"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.token and not (args.username and args.password):
        parser.error("give --token (TIDINGS_BOT_TOKEN) or --username and --password")
    return Bot(args.url, token=args.token, username=args.username, password=args.password)
