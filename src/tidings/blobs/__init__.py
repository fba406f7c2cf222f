"""The BlobStore port (ports.py) and its adapters: the data directory (local.py, the
embedded default) and an S3-compatible object store (s3.py, for scale-out)."""
