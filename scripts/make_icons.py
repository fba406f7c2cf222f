"""Draw the web client's app icons (src/tidings/web/icons/*.png) with Pillow: a rounded
square in the brand gradient's blue with a white speech bubble. Run again after a
change: `python scripts/make_icons.py`. The PNGs are committed (the server serves
them as they are; nothing is drawn at run time)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "src" / "tidings" / "web" / "icons"
BLUE = (47, 111, 237, 255)
VIOLET = (106, 77, 244, 255)
WHITE = (255, 255, 255, 255)


def draw(size: int, *, maskable: bool) -> Image.Image:
    scale = 4  # drawn large, then scaled down: smooth edges
    big = size * scale
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    # a maskable icon fills the square (the platform cuts its own shape); the plain one
    # is a rounded square
    radius = 0 if maskable else big // 5
    for y in range(big):  # the diagonal-ish gradient, row by row
        t = y / (big - 1)
        row = tuple(round(BLUE[i] + (VIOLET[i] - BLUE[i]) * t) for i in range(4))
        d.line([(0, y), (big, y)], fill=row)
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, big - 1, big - 1], radius=radius, fill=255)
    img.putalpha(mask)
    # the bubble: inside the safe zone (the middle 80%) for maskable icons
    inset = big * (0.27 if maskable else 0.2)
    box = [inset, inset, big - inset, big - inset * 1.25]
    d.rounded_rectangle(box, radius=big // 9, fill=WHITE)
    tail_x = box[0] + (box[2] - box[0]) * 0.28
    d.polygon(
        [(tail_x, box[3] - 2), (tail_x + big * 0.12, box[3] - 2), (tail_x, box[3] + big * 0.1)],
        fill=WHITE,
    )
    # three dots
    cy = (box[1] + box[3]) / 2
    r = big * 0.035
    for k in (-1, 0, 1):
        cx = (box[0] + box[2]) / 2 + k * big * 0.12
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=BLUE)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        draw(size, maskable=False).save(OUT / f"icon-{size}.png", optimize=True)
        draw(size, maskable=True).save(OUT / f"maskable-{size}.png", optimize=True)
    draw(180, maskable=True).convert("RGB").save(OUT / "apple-touch-icon.png", optimize=True)
    draw(32, maskable=False).save(OUT / "favicon-32.png", optimize=True)


if __name__ == "__main__":
    main()
