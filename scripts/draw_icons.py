"""Draw the app's PNG icons (static/icon-192.png, static/icon-512.png) with Pillow.

They repeat static/favicon.svg's design, a white speech bubble on a blue rounded square,
for the web app manifest and iOS's home screen, which want PNGs. Run it after changing
the design:

    .venv/bin/python scripts/draw_icons.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

STATIC = Path(__file__).resolve().parent.parent / "static"
BLUE = "#0b57d0"
# favicon.svg's shapes on its 32-unit grid: the square's corner radius, the bubble's outline.
CORNER = 7
BUBBLE = [(8, 10), (24, 10), (24, 19), (15, 19), (10, 23), (10, 19), (8, 19)]
SUPERSAMPLE = 4  # drawn larger, then scaled down, for smooth edges


def draw(size: int) -> Image.Image:
    """The icon at size x size pixels."""
    scale = size * SUPERSAMPLE / 32
    image = Image.new("RGBA", (size * SUPERSAMPLE,) * 2, (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle([0, 0, image.width - 1, image.height - 1], radius=CORNER * scale,
                          fill=BLUE)
    pen.polygon([(x * scale, y * scale) for x, y in BUBBLE], fill="white")
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    for size in (192, 512):
        draw(size).save(STATIC / f"icon-{size}.png", optimize=True)


if __name__ == "__main__":
    main()
