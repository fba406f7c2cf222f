"""Where an S3 blob store is: `blob_url` parsed (s3://BUCKET[/PREFIX]?endpoint=URL&
region=R&addressing=path|virtual; blobs/factory.py says what each part means). Pure:
the settings check calls it, so a bad URL stops the start-up with one sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
_QUERY = ("endpoint", "region", "addressing")


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str = ""  # "" or ending in "/"
    endpoint: str | None = None
    region: str = "us-east-1"
    addressing: str = "path"


def parse_blob_url(url: str) -> S3Location:
    """The S3 location of a blob_url; ValueError saying what is wrong (the settings
    check calls this, so a bad URL stops the start-up with that sentence)."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(
            "blob_url: s3://bucket?endpoint=... or file:///path (unset: the data directory)"
        )
    if "@" in parts.netloc:
        raise ValueError("blob_url: no keys in the URL: set blob_access_key and blob_secret_key")
    bucket = parts.netloc
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(
            f"blob_url: {bucket[:80]!r} is no bucket name (3 to 63 characters: a-z, 0-9, '.', '-')"
        )
    prefix = parts.path.strip("/")
    if prefix and (any(not p for p in prefix.split("/")) or len(prefix) > 200):
        raise ValueError("blob_url: the key prefix after the bucket has an empty part")
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _QUERY:
            raise ValueError(
                f"blob_url: unknown parameter {name[:40]!r} (known: {', '.join(_QUERY)})"
            )
        if name in query:
            raise ValueError(f"blob_url: {name} is given twice")
        query[name] = value
    endpoint = query.get("endpoint")
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.hostname or ep.path not in ("", "/"):
            raise ValueError(
                f"blob_url: endpoint {endpoint[:80]!r} is no http(s)://host[:port] URL"
            )
        if ep.username or ep.password:
            raise ValueError(
                "blob_url: no keys in the endpoint: set blob_access_key and blob_secret_key"
            )
        try:
            ep.port  # noqa: B018 - a bad port raises here
        except ValueError:
            raise ValueError(f"blob_url: endpoint {endpoint[:80]!r} has a bad port") from None
        endpoint = endpoint.rstrip("/")
    region = query.get("region", "us-east-1")
    if not _REGION.match(region):
        raise ValueError(f"blob_url: {region[:40]!r} is no region name")
    addressing = query.get("addressing", "path")
    if addressing not in ("path", "virtual"):
        raise ValueError("blob_url: addressing is path or virtual")
    return S3Location(
        bucket=bucket,
        prefix=f"{prefix}/" if prefix else "",
        endpoint=endpoint,
        region=region,
        addressing=addressing,
    )
