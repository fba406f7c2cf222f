"""TIDINGS_BLOB_URL: what an operator may write, and a clear sentence at start-up for
what they may not (the settings check parses it, before anything is contacted)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tidings.app.settings import Settings
from tidings.blobs.factory import S3Location, open_blob_store, parse_blob_url
from tidings.blobs.s3 import S3BlobStore


def test_the_documented_form() -> None:
    assert parse_blob_url("s3://files?endpoint=http://127.0.0.1:8333&region=us-east-1") == (
        S3Location(bucket="files", endpoint="http://127.0.0.1:8333", region="us-east-1")
    )


def test_defaults_a_prefix_and_virtual_hosts() -> None:
    assert parse_blob_url("s3://my.bucket-1") == S3Location(bucket="my.bucket-1")
    assert parse_blob_url(
        "s3://b01/tidings/prod/?endpoint=https://s3.example.org/&addressing=virtual&region=eu-west-3"
    ) == S3Location(
        bucket="b01",
        prefix="tidings/prod/",
        endpoint="https://s3.example.org",
        region="eu-west-3",
        addressing="virtual",
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://bucket", "s3://bucket?endpoint="),
        ("s3://", "no bucket name"),
        ("s3://UPPER", "no bucket name"),
        ("s3://a..b", "no bucket name"),
        ("s3://" + "b" * 64, "no bucket name"),
        ("s3://key:secret@bucket", "no keys in the URL"),
        ("s3://bucket?endpoint=ftp://host", "no http(s)://host[:port] URL"),
        ("s3://bucket?endpoint=http://", "no http(s)://host[:port] URL"),
        ("s3://bucket?endpoint=http://host/path", "no http(s)://host[:port] URL"),
        ("s3://bucket?endpoint=http://k:s@host", "no keys in the endpoint"),
        ("s3://bucket?endpoint=http://host:99999", "bad port"),
        ("s3://bucket?region=Not_A_Region", "no region name"),
        ("s3://bucket?addressing=dns", "addressing is path or virtual"),
        ("s3://bucket?secret=x", "unknown parameter 'secret'"),
        ("s3://bucket?region=a&region=b", "region is given twice"),
        ("s3://bucket/a//b", "empty part"),
    ],
)
def test_a_bad_url_stops_the_start_up_saying_why(url: str, says: str) -> None:
    with pytest.raises(ValueError, match="blob_url") as raised:
        parse_blob_url(url)
    assert says in str(raised.value)
    with pytest.raises(ValidationError) as invalid:
        Settings(blob_url=url, blob_access_key="a", blob_secret_key="b")
    assert says in str(invalid.value)


def test_both_keys_or_neither() -> None:
    with pytest.raises(ValidationError, match="both blob_access_key and blob_secret_key"):
        Settings(blob_url="s3://bucket", blob_access_key="only-one")
    Settings(blob_url="s3://bucket")  # the S3 client's own chain (AWS_* variables)


def test_the_store_never_shows_its_secret_key() -> None:
    settings = Settings(
        blob_url="s3://bucket?endpoint=http://127.0.0.1:1",
        blob_access_key="AKIDEXAMPLE",
        blob_secret_key="the-very-secret-key",
    )
    store = open_blob_store(settings)  # contacts nothing
    assert isinstance(store, S3BlobStore)
    assert "the-very-secret-key" not in repr(store) + str(store.__dict__.get("location"))
    assert "the-very-secret-key" not in repr(settings) + str(settings.model_dump())
    assert store.part_bytes == 8 * 1024 * 1024


def test_a_part_is_at_least_what_s3_allows() -> None:
    with pytest.raises(ValidationError, match="blob_s3_part_bytes"):
        Settings(blob_s3_part_bytes=1024 * 1024)
