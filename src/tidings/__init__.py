"""Tidings: self-hosted enterprise instant messaging."""

__version__ = "0.1.0"
