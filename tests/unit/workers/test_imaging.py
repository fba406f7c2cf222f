"""The worker's image renditions (workers/imaging.py): what is served inline carries the
pixels and nothing else of the file, is turned as the camera said, and a file that
claims more pixels than allowed is refused before it is decoded."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image

from tidings.workers.imaging import NotAnImage, derive_image, render_avatar

MAX = 40_000_000


def jpeg_with_gps(width: int = 600, height: int = 300, orientation: int = 1) -> bytes:
    im = Image.new("RGB", (width, height), (200, 30, 30))
    im.paste((30, 30, 200), (0, 0, width // 2, height))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "CameraMaker"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.0)
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 36.0)
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height (its data is a few bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_gps_and_every_exif_field_are_gone_from_what_is_served() -> None:
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825), "the test file has GPS"
    derived = derive_image(original, "image/jpeg", max_pixels=MAX)
    for rendition in (derived.thumbnail, derived.preview):
        assert rendition.content_type == "image/jpeg"
        served = Image.open(io.BytesIO(rendition.data))
        assert dict(served.getexif()) == {}
        assert "exif" not in served.info
        assert b"CameraMaker" not in rendition.data
        assert b"Exif" not in rendition.data
    assert (derived.width, derived.height) == (600, 300)
    assert max(derived.thumbnail.width, derived.thumbnail.height) == 320
    assert (derived.preview.width, derived.preview.height) == (600, 300)  # not enlarged


def test_the_exif_orientation_is_applied() -> None:
    # Orientation 6: the camera was turned; shown rotated 90° clockwise: 300 x 600.
    derived = derive_image(jpeg_with_gps(orientation=6), "image/jpeg", max_pixels=MAX)
    assert (derived.width, derived.height) == (300, 600)
    thumb = Image.open(io.BytesIO(derived.thumbnail.data)).convert("RGB")
    assert thumb.size == (160, 320)
    # The blue left half is at the top once turned clockwise.
    top, bottom = thumb.getpixel((80, 10)), thumb.getpixel((80, 310))
    assert top[2] > 150 and top[0] < 100, top
    assert bottom[0] > 150 and bottom[2] < 100, bottom


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    bomb = png_claiming(50_000, 50_000)
    assert len(bomb) < 2000
    started = time.monotonic()
    with pytest.raises(NotAnImage, match=r"too many pixels|decompression bomb"):
        derive_image(bomb, "image/png", max_pixels=MAX)
    # Between the limit and twice it (where Pillow only warns): refused all the same.
    with pytest.raises(NotAnImage, match="too many pixels"):
        derive_image(png_claiming(1200, 1000), "image/png", max_pixels=1_000_000)
    assert time.monotonic() - started < 1.0


def test_an_animated_gif_gets_a_still_of_its_first_frame() -> None:
    frames = [Image.new("RGB", (64, 48), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    derived = derive_image(out.getvalue(), "image/gif", max_pixels=MAX)
    assert derived.animated
    thumb = Image.open(io.BytesIO(derived.thumbnail.data))
    assert not getattr(thumb, "is_animated", False)
    assert thumb.format == "JPEG"
    r, g, b = thumb.convert("RGB").getpixel((32, 24))
    assert r > 200 and g < 60 and b < 60  # the first (red) frame


def test_transparency_is_kept_as_webp() -> None:
    im = Image.new("RGBA", (800, 400), (0, 0, 0, 0))
    im.paste((0, 128, 0, 255), (0, 0, 400, 400))
    out = io.BytesIO()
    im.save(out, "PNG", pnginfo=_text_chunk("Comment", "secret note"))
    derived = derive_image(out.getvalue(), "image/png", max_pixels=MAX)
    assert derived.thumbnail.content_type == "image/webp"
    assert b"secret note" not in derived.thumbnail.data + derived.preview.data
    thumb = Image.open(io.BytesIO(derived.thumbnail.data))
    assert thumb.format == "WEBP" and thumb.mode == "RGBA" and thumb.size == (320, 160)
    assert thumb.getpixel((300, 80))[3] == 0


def _text_chunk(key: str, value: str) -> object:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"not an image at all", "image/png"),
        (jpeg_with_gps()[:400], "image/jpeg"),  # truncated
        (png_claiming(10, 10)[:30], "image/png"),
        (b"GIF89a" + b"\x00" * 20, "image/gif"),
        (jpeg_with_gps(), "image/png"),  # a JPEG sniffed as PNG: only the PNG decoder is tried
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        (b"%PDF-1.4", "application/pdf"),
    ],
)
def test_what_cannot_be_previewed_is_refused_cleanly(data: bytes, content_type: str) -> None:
    with pytest.raises(NotAnImage):
        derive_image(data, content_type, max_pixels=MAX)


def test_an_avatar_is_square_center_cropped_upright_and_without_exif() -> None:
    # 600x300, left half blue, right half red (jpeg_with_gps): the center crop is the
    # middle 300x300, half blue, half red
    large, small = render_avatar(jpeg_with_gps(), "image/jpeg", max_pixels=10_000_000)
    assert (large.width, large.height, small.width, small.height) == (256, 256, 64, 64)
    im = Image.open(io.BytesIO(large.data))
    assert im.size == (256, 256) and not im.getexif() and "exif" not in im.info
    left, right = im.getpixel((40, 128)), im.getpixel((215, 128))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[2] > 150 > left[0] and right[0] > 150 > right[2]


def test_an_avatar_refuses_what_a_preview_refuses() -> None:
    with pytest.raises(NotAnImage):
        render_avatar(png_claiming(50_000, 50_000), "image/png", max_pixels=10_000_000)
    with pytest.raises(NotAnImage):
        render_avatar(b"<svg/>", "image/svg+xml", max_pixels=10_000_000)
    with pytest.raises(NotAnImage):
        render_avatar(b"\x89PNG\r\n\x1a\nnope", "image/png", max_pixels=10_000_000)
