"""The `tidings` command line: admin commands call services, never SQL."""
