"""Outgoing HTTP that users aim (webhooks): the port and its httpx adapter, with the
SSRF guard (resolve, check every address, connect to the checked one)."""
