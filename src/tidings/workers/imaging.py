"""What the worker makes of an uploaded image, with Pillow: its size as shown (EXIF
orientation applied), a small thumbnail and a preview, both re-encoded from pixels only,
so that no EXIF (GPS position, camera serial), XMP, comment or other text chunk of the
original reaches what is served inline. An animated GIF gets a still of its first frame.

Blocking and CPU-heavy: `derive_image` runs in a thread (workers/files.py calls it
through `asyncio.to_thread`), never on an event loop.

Decompression bombs: the pixel count a file claims is read from its header and checked
against `max_pixels` before any pixel is decoded (a 40 KB PNG may claim 50000 x 50000,
which is 10 GB of RGBA); Pillow's own guard (`Image.MAX_IMAGE_PIXELS`, an error at
twice it) is set to the same limit as a second fence. Only the decoders of the formats
a browser shows (PNG, JPEG, GIF, WebP) are tried, whatever the bytes claim; a file they
refuse, or one that is truncated, stays a plain file (downloadable, no preview)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow warns between its limit and twice it; derive_image refuses that range itself.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# The formats whose derived sizes are made, by the content type the upload was sniffed as.
PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
THUMB_PX = 320
PREVIEW_PX = 1280
JPEG_QUALITY = 82


class NotAnImage(Exception):
    """The bytes could not be made into a preview (too many pixels, not decodable): the
    file stays a plain file. `reason` says which, for the job's log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rendition:
    data: bytes
    content_type: str  # image/jpeg (opaque) or image/webp (with transparency)
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class DerivedImage:
    width: int  # of the image as shown: after its EXIF orientation
    height: int
    thumbnail: Rendition
    preview: Rendition
    animated: bool


def derive_image(
    data: bytes,
    content_type: str,
    *,
    max_pixels: int,
    thumb_px: int = THUMB_PX,
    preview_px: int = PREVIEW_PX,
) -> DerivedImage:
    """The thumbnail and preview of an image upload (`data`, sniffed as `content_type`).
    Raises NotAnImage when it cannot be one."""
    fmt = PILLOW_FORMATS.get(content_type)
    if fmt is None:
        raise NotAnImage(f"not an image type with previews: {content_type}")
    # Pillow's own fence (an error at twice the limit); the check below comes first.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
            if width < 1 or height < 1:
                raise NotAnImage("no pixels")
            if width * height > max_pixels:
                raise NotAnImage(f"too many pixels: {width}x{height} > {max_pixels}")
            animated = bool(getattr(im, "is_animated", False))
            if animated:
                im.seek(0)  # the still: the first frame
            im.load()
            frame = _pixels_only(im)
    except NotAnImage:
        raise
    except Image.DecompressionBombError as exc:
        raise NotAnImage(f"decompression bomb: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError) as exc:
        raise NotAnImage(f"not decodable: {type(exc).__name__}: {exc}"[:300]) from exc
    return DerivedImage(
        width=frame.width,
        height=frame.height,
        thumbnail=_render(frame, thumb_px),
        preview=_render(frame, preview_px),
        animated=animated,
    )


def _pixels_only(im: Image.Image) -> Image.Image:
    """The image as shown (EXIF orientation applied), as a new image that has only its
    pixels: RGB, or RGBA where it has transparency; no metadata of the file at all."""
    oriented = ImageOps.exif_transpose(im)
    alpha = oriented.mode in ("RGBA", "LA", "PA") or (
        oriented.mode == "P" and "transparency" in oriented.info
    )
    mode = "RGBA" if alpha else "RGB"
    converted = oriented.convert(mode)
    if alpha:
        low, _high = converted.getchannel("A").getextrema()
        if low == 255:  # fully opaque after all
            converted, mode = converted.convert("RGB"), "RGB"
    return Image.frombytes(mode, converted.size, converted.tobytes())


def _render(frame: Image.Image, box: int) -> Rendition:
    out = frame.copy()
    if out.width > box or out.height > box:
        out.thumbnail((box, box), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if out.mode == "RGBA":
        out.save(buffer, "WEBP", quality=85, method=4)  # keeps the transparency
        content_type = "image/webp"
    else:
        out.save(buffer, "JPEG", quality=JPEG_QUALITY)
        content_type = "image/jpeg"
    return Rendition(buffer.getvalue(), content_type, out.width, out.height)


AVATAR_SIZES = (256, 64)  # services/avatars.py: the large and the small rendition


def render_avatar(
    data: bytes, content_type: str, *, max_pixels: int, sizes: tuple[int, ...] = AVATAR_SIZES
) -> list[Rendition]:
    """Square renditions of an image (center-cropped to its shorter side, then scaled to
    each of `sizes`, upwards too), re-encoded from pixels only as `derive_image`'s are:
    no EXIF, no text chunk, the EXIF orientation applied; an animated image's first
    frame. The same checks as `derive_image` first (NotAnImage)."""
    fmt = PILLOW_FORMATS.get(content_type)
    if fmt is None:
        raise NotAnImage(f"not an image type with previews: {content_type}")
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
            if width < 1 or height < 1:
                raise NotAnImage("no pixels")
            if width * height > max_pixels:
                raise NotAnImage(f"too many pixels: {width}x{height} > {max_pixels}")
            if getattr(im, "is_animated", False):
                im.seek(0)
            im.load()
            frame = _pixels_only(im)
    except NotAnImage:
        raise
    except Image.DecompressionBombError as exc:
        raise NotAnImage(f"decompression bomb: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError) as exc:
        raise NotAnImage(f"not decodable: {type(exc).__name__}: {exc}"[:300]) from exc
    side = min(frame.width, frame.height)
    left, top = (frame.width - side) // 2, (frame.height - side) // 2
    square = frame.crop((left, top, left + side, top + side))
    out = []
    for px in sizes:
        scaled = square.resize((px, px), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        if scaled.mode == "RGBA":
            scaled.save(buffer, "WEBP", quality=85, method=4)
            kind = "image/webp"
        else:
            scaled.save(buffer, "JPEG", quality=JPEG_QUALITY)
            kind = "image/jpeg"
        out.append(Rendition(buffer.getvalue(), kind, px, px))
    return out
