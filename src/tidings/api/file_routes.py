"""REST routes of files (docs/files.md): upload, metadata, download (with Range),
thumbnails, signed links, and a conversation's files.

An upload is parsed as it streams in (python-multipart's streaming parser over
`request.stream()`; never FastAPI's UploadFile, which spools the whole file): the
`file` part's bytes go straight to the files service, which writes them to the blob
store. The global request-size limit does not apply to this path (api/limits.py:
`upload_paths`); max_upload_bytes does, counted while the bytes come.

Every file response is served so that no browser runs it: `Content-Disposition:
attachment` but for raster images that end where their format ends (PNG, JPEG, GIF,
WebP), `X-Content-Type-Options: nosniff`, and `Content-Security-Policy: sandbox;
default-src 'none'`."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from tidings.api import schemas as s
from tidings.api.errors import error_response
from tidings.api.routes import ERRORS, Auth, Svc, client_ip, json
from tidings.core.clock import rfc3339
from tidings.core.errors import ErrorCode, InvalidRequest, UnsupportedMediaType
from tidings.core.files import INLINE_TYPES
from tidings.core.models import MAX_STORED_INT, FileInfo
from tidings.protocol.wire import file_json

UPLOAD_PATH = "/api/v1/files"
UPLOAD_PATHS = frozenset({UPLOAD_PATH})
MULTIPART_ROOM = 1024 * 1024  # the body's limit beyond max_upload_bytes: framing, other fields
MAX_PARTS = 16  # parts of an upload's body read, at most
MAX_PART_HEADER_BYTES = 16 * 1024  # one header line of a part (a long file name fits)
FILE_CSP = "sandbox; default-src 'none'"
# never served with their own type, even as an attachment
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "application/javascript",
        "text/javascript",
    }
)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["files"])


# --- upload ---------------------------------------------------------------------------
class _Multipart:
    """A multipart/form-data body read part by part as it streams in: `next_part()`
    gives the next part's headers, `data()` that part's bytes. Holds no more than what
    one chunk of the request produces."""

    def __init__(self, boundary: bytes, body: AsyncIterator[bytes]) -> None:
        self._body = body
        self._events: deque[tuple[str, bytes]] = deque()
        self._field = b""
        self._value = b""
        self._finished = False
        push = self._events.append

        def data(kind: str) -> Any:
            def on(buf: bytes, start: int, end: int) -> None:
                push((kind, bytes(buf[start:end])))

            return on

        def on_header_end() -> None:
            push(("header", self._field + b"\x00" + self._value))
            self._field = self._value = b""

        def on_field(buf: bytes, start: int, end: int) -> None:
            self._field += buf[start:end]

        def on_value(buf: bytes, start: int, end: int) -> None:
            self._value += buf[start:end]

        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": lambda: push(("begin", b"")),
                "on_header_field": on_field,
                "on_header_value": on_value,
                "on_header_end": on_header_end,
                "on_headers_finished": lambda: push(("headers", b"")),
                "on_part_data": data("data"),
                "on_part_end": lambda: push(("end", b"")),
                "on_end": lambda: push(("done", b"")),
            },
            max_header_count=8,
            max_header_size=MAX_PART_HEADER_BYTES,
        )

    async def _event(self) -> tuple[str, bytes]:
        while not self._events:
            if self._finished:
                return ("done", b"")
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._finished = True
                raise InvalidRequest(
                    "the multipart body ended before its closing boundary"
                ) from None
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise InvalidRequest(f"malformed multipart body: {exc}"[:200]) from None
        return self._events.popleft()

    async def next_part(self) -> dict[str, bytes] | None:
        """The next part's headers (lower-case names), None after the last part."""
        headers: dict[str, bytes] = {}
        while True:
            kind, value = await self._event()
            if kind == "done":
                self._finished = True
                return None
            if kind == "header":
                name, _, text = value.partition(b"\x00")
                headers[name.decode("latin-1").lower()] = text
            elif kind == "headers":
                return headers

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's bytes, to its end."""
        while True:
            kind, value = await self._event()
            if kind == "data":
                yield value
            elif kind in ("end", "done"):
                return


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not 0 < len(boundary) <= 200:
        raise UnsupportedMediaType("an upload is multipart/form-data with a field named file")
    return boundary


@router.post(
    "/files",
    status_code=201,
    response_model=s.FileEnvelope,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_file(request: Request, svc: Svc, me: Auth) -> Response:
    """Upload one file (multipart field `file`), streamed: at most max_upload_bytes
    (413 `too_large`, also over the caller's upload quota), a type the server allows as
    sniffed from the bytes (415 `unsupported_media_type`), rate limited (429). Nothing
    is kept of a refused or interrupted upload. → 201 `{file}`."""
    boundary = _boundary(request)
    reader = _Multipart(boundary, request.stream().__aiter__())
    file: FileInfo | None = None
    try:
        for _ in range(MAX_PARTS):
            headers = await reader.next_part()
            if headers is None:
                break
            _kind, options = parse_options_header(headers.get("content-disposition", b""))
            field = options.get(b"name", b"").decode("utf-8", "replace")
            if field == "file" and file is None:
                name = options.get(b"filename", b"file").decode("utf-8", "replace")
                file = await svc.files.upload(
                    me.user,
                    name,
                    headers.get("content-type", b"").decode("latin-1"),
                    reader.data(),
                    address=client_ip(request),
                )
                break  # what follows the file is not read
            async for _chunk in reader.data():
                pass  # another field: skipped
    except ClientDisconnect:
        return Response(status_code=400)  # nobody to answer; nothing was kept
    if file is None:
        raise InvalidRequest("the upload has no part named file", field="file")
    return json({"file": file_json(file)}, 201)


# --- metadata and links ----------------------------------------------------------------
@router.get("/files/{file_id}/meta", response_model=s.FileEnvelope)
async def file_meta(file_id: str, svc: Svc, me: Auth) -> Response:
    """The file object (the uploader, or a member of a conversation where it is
    attached; anyone else: `not_found`)."""
    return json({"file": file_json(await svc.files.get(me.user, file_id))})


@router.post("/files/{file_id}/link", response_model=s.FileLinkOut)
async def file_link(file_id: str, svc: Svc, me: Auth, body: s.FileLinkIn | None = None) -> Response:
    """A signed URL (absolute path) that reads the file without a token until
    `expires_at` (file_link_ttl_seconds): for `<img>`, browsers and CDNs."""
    variant = "original" if body is None else body.variant
    link = await svc.files.link(me.user, file_id, variant)
    return json({"url": link.url, "expires_at": rfc3339(link.expires_at)})


@router.get("/conversations/{cid}/files", response_model=s.ConversationFilesOut)
async def conversation_files(
    cid: str,
    svc: Svc,
    me: Auth,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=24, pattern=r"^[0-9]+$")] = None,
) -> Response:
    """The files of the conversation's messages (not recalled), newest first: the
    "Files" panel. `next_cursor` gives the next, older page."""
    before = None if cursor is None else int(cursor)
    if before is not None and not 1 <= before <= MAX_STORED_INT:
        raise InvalidRequest("cursor is a next_cursor given before", field="cursor")
    rows, next_seq = await svc.files.conversation_files(
        me.user, cid, before_seq=before, limit=limit
    )
    return json(
        {
            "files": [
                {
                    "file": file_json(r.file),
                    "seq": r.seq,
                    "sender_id": r.sender_id,
                    "sent_at": rfc3339(r.sent_at),
                }
                for r in rows
            ],
            "next_cursor": None if next_seq is None else str(next_seq),
        }
    )


# --- downloads -------------------------------------------------------------------------
_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "the bytes"},
    206: {"description": "the requested range (Content-Range)"},
    304: {"description": "not modified (If-None-Match)"},
    416: {"model": s.ErrorOut, "description": "the range is not in the file"},
}


@router.get("/files/{file_id}", response_class=Response, responses=_FILE_RESPONSES)
async def download(file_id: str, request: Request, svc: Svc, me: Auth) -> Response:
    """The file's bytes (streamed; `Range: bytes=a-b` gives 206, one range only: more
    are answered whole)."""
    file = await svc.files.get(me.user, file_id)
    return await _serve(request, svc, file, "original", "private, no-cache")


@router.get("/files/{file_id}/thumbnail", response_class=Response, responses=_FILE_RESPONSES)
async def thumbnail(
    file_id: str,
    request: Request,
    svc: Svc,
    me: Auth,
    size: Annotated[str, Query(pattern="^(small|preview)$")] = "small",
) -> Response:
    """An image's thumbnail (`small`) or preview size; `not_found` until the job after
    the upload has made it (or for a file that is no image)."""
    file = await svc.files.get(me.user, file_id)
    variant = "thumbnail" if size == "small" else "preview"
    return await _serve(request, svc, file, variant, "private, no-cache")


@router.get("/files/{file_id}/signed", response_class=Response, responses=_FILE_RESPONSES)
async def signed_download(
    file_id: str,
    request: Request,
    svc: Svc,
    variant: Annotated[str, Query(max_length=16)] = "original",
    expires: Annotated[int, Query(ge=0, le=2**40)] = 0,
    sig: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """A signed link (POST /files/{id}/link): no token; cacheable and immutable (the
    content is addressed by its hash) until it expires. Altered: `not_found`;
    expired: `forbidden`."""
    file, seconds_left = await svc.files.open_signed(file_id, variant, expires, sig)
    cache = f"public, max-age={max(0, seconds_left)}, immutable"
    return await _serve(request, svc, file, variant, cache)


async def _serve(request: Request, svc: Svc, file: FileInfo, variant: str, cache: str) -> Response:
    key = svc.files.key_of(file, variant)
    if variant == "original":
        size, etag = file.size, f'"{file.sha256}"'
        inline = file.inline_safe and file.content_type in INLINE_TYPES
        content_type, name = file.content_type, file.name
    else:
        size, etag = await svc.files.size_of(key), f'"{file.sha256}.{variant}"'
        inline, content_type = True, "image/webp" if key.endswith(".webp") else "image/jpeg"
        name = f"{variant}-{file.name}"
    if content_type in ACTIVE_TYPES or (not inline and content_type.startswith("image/svg")):
        content_type = "application/octet-stream"
    headers = {
        "etag": etag,
        "cache-control": cache,
        "accept-ranges": "bytes",
        "content-disposition": content_disposition(name, inline),
        "x-content-type-options": "nosniff",
        "content-security-policy": FILE_CSP,
        "cross-origin-resource-policy": "same-site",
    }
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    wanted = _range(request, size, etag)
    if isinstance(wanted, str):  # unsatisfiable
        answer = error_response(
            416, ErrorCode.INVALID_REQUEST, f"the range is not within the file's {size} bytes"
        )
        answer.headers["content-range"] = f"bytes */{size}"
        for k, v in headers.items():
            answer.headers[k] = v
        return answer
    status = 200
    start, end = 0, size
    if wanted is not None:
        start, end = wanted
        status = 206
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    headers["content-length"] = str(end - start)
    if request.method == "HEAD" or end == start:
        return Response(status_code=status, headers=headers, media_type=content_type)
    return StreamingResponse(
        svc.files.read(key, start, end), status, headers=headers, media_type=content_type
    )


def _etags(value: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in value.split(",") if t.strip()}


def _range(request: Request, size: int, etag: str) -> tuple[int, int] | str | None:
    """[start, end) of a single `Range: bytes=` range; None: the whole file (no Range,
    several ranges, a malformed one, or an If-Range that no longer matches);
    "unsatisfiable" when it starts past the end."""
    header = request.headers.get("range")
    if not header:
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        return None
    found = _RANGE.match(header.strip().replace(" ", ""))
    if found is None:
        return None  # several ranges, another unit, or garbage: the whole file
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        count = int(last)
        if count == 0:
            return "unsatisfiable"
        return max(0, size - count), size
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    end = size if not last else min(size, int(last) + 1)
    if end <= start:
        return None
    return start, end


def content_disposition(name: str, inline: bool) -> str:
    """`attachment` (or `inline`) with the name twice: an ASCII fallback, quoted, and
    the exact UTF-8 name (RFC 5987 / RFC 6266 `filename*`)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;' else "_" for c in name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
