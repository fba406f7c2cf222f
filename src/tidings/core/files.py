"""Files, without IO: what an uploaded file's name may be, which content types a list of
settings allows, which types are shown inline, and what the bytes say they are (the
content sniffer `filetype` reads magic numbers; this module adds what it does not tell:
text, markup, Mach-O, and whether a raster image has something appended)."""

from __future__ import annotations

import unicodedata

import filetype

# Read this many first bytes to sniff a type (filetype needs 262; more for text).
SNIFF_BYTES = 8192
TAIL_BYTES = 16  # kept of an upload's end, to see that an image ends where its format does
# Raster images a browser may show inline (never SVG: it is a document with scripts).
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
OCTET_STREAM = "application/octet-stream"
# A client's own type is believed only where the bytes say no more than "text".
_DECLARED_TEXT = frozenset(
    {"text/csv", "text/markdown", "text/tab-separated-values", "text/x-log", "application/json"}
)
_MACHO = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)


def sanitize_file_name(name: str, max_chars: int) -> str:
    """A name safe to store and to hand back in a Content-Disposition header: the last
    path segment only (no directories, no `..`), no control or format characters
    (bidirectional overrides included), no leading dots or spaces, at most `max_chars`
    characters (the extension kept when cut); "file" when nothing is left."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(
        c for c in name if unicodedata.category(c)[0] != "C" and c not in '<>:"|?*'
    )
    kept = " ".join(kept.split())  # no runs of spaces, no newlines
    kept = kept.lstrip(". ").rstrip(". ")
    if kept.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
        kept = "_" + kept
    if len(kept) > max_chars:
        stem, dot, ext = kept.rpartition(".")
        if dot and 0 < len(ext) <= 16 and len(stem) > 0:
            kept = stem[: max_chars - len(ext) - 1].rstrip(". ") + "." + ext
        else:
            kept = kept[:max_chars]
    return kept or "file"


def parse_types(value: str) -> tuple[str, ...]:
    """A comma-separated list of content types (`type/sub` or `type/*`), lower case."""
    return tuple(t.strip().lower() for t in value.split(",") if t.strip())


def type_matches(content_type: str, patterns: tuple[str, ...]) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    major = base.split("/", 1)[0]
    return any(p == base or p == f"{major}/*" or p == "*/*" for p in patterns)


def type_allowed(content_type: str, allowed: tuple[str, ...], blocked: tuple[str, ...]) -> bool:
    """Blocked wins; an empty `allowed` allows every type not blocked."""
    if type_matches(content_type, blocked):
        return False
    return not allowed or type_matches(content_type, allowed)


def sniff(head: bytes, declared: str | None = None) -> str:
    """The content type of a file whose first bytes are `head` (SNIFF_BYTES of them, or
    all when shorter). The client's `declared` type counts only where the bytes say
    plain text (then a few text types are taken from it); markup is named as what it
    is (text/html, image/svg+xml) whatever the client says."""
    if any(head.startswith(m) for m in _MACHO):
        return "application/x-mach-binary"
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return str(kind.mime)
    if b"\x00" in head:
        return OCTET_STREAM
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the head
            return OCTET_STREAM
        text = head[: exc.start].decode("utf-8")
    probe = text.lstrip("\ufeff \t\r\n").lower()
    if probe.startswith("<"):
        if "<svg" in probe:
            return "image/svg+xml"
        if probe.startswith(("<!doctype html", "<html", "<head", "<body", "<script")):
            return "text/html"
        if probe.startswith("<?xml"):
            return "application/xml"
    if "<script" in probe or "<html" in probe:
        return "text/html"
    given = (declared or "").split(";", 1)[0].strip().lower()
    if given in _DECLARED_TEXT:
        return given
    return "text/plain"


def ends_cleanly(content_type: str, tail: bytes) -> bool:
    """Whether an image of `content_type` ends where its format ends (its last bytes are
    `tail`): a PNG with an HTML page or a ZIP appended (a polyglot, such as a GIFAR)
    does not, and is then never shown inline."""
    if content_type == "image/png":
        return tail.endswith(b"IEND\xaeB`\x82")
    if content_type == "image/jpeg":
        return tail.endswith(b"\xff\xd9")
    if content_type == "image/gif":
        return tail.endswith(b"\x3b")
    return False  # WebP: its RIFF header carries its size (riff_size_matches)


def riff_size_matches(head: bytes, size: int) -> bool:
    """A WebP (RIFF) file's header says how long it is: 8 + the little-endian size."""
    if len(head) < 12 or not head.startswith(b"RIFF"):
        return False
    declared = int.from_bytes(head[4:8], "little")
    return declared + 8 + (declared & 1) == size or declared + 8 == size


# Derived blobs (thumbnails, previews: workers/files.py) are content-addressed like the
# originals: one set per sha256, shared by every upload of those bytes, removed with
# the original's blob when it is collected.
DERIVED_PREFIX = "d/"
DERIVED_EXTENSIONS = {"image/jpeg": "jpg", "image/webp": "webp"}
DERIVED_VARIANTS = ("thumb", "preview")


def derived_key(sha256: str, variant: str, content_type: str) -> str:
    return f"{DERIVED_PREFIX}{sha256}/{variant}.{DERIVED_EXTENSIONS[content_type]}"


def derived_keys(sha256: str) -> list[str]:
    """Every key a file of these bytes may have derived blobs under."""
    return [
        derived_key(sha256, variant, content_type)
        for variant in DERIVED_VARIANTS
        for content_type in DERIVED_EXTENSIONS
    ]
