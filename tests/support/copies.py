"""Copies of a picture that the copy report's hashes cannot pair, for its pixel check."""

from PIL import Image


def turned_and_zoomed(image: Image.Image, degrees: float, zoom: float = 0.8) -> Image.Image:
    """Zoomed out and turned about its centre, corners black (a scan or a re-photographed
    print): none of PDQ's turns and mirrors reproduces it."""
    w, h = image.size
    smaller = image.resize((round(w * zoom), round(h * zoom)), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (w, h))
    canvas.paste(smaller, ((w - smaller.width) // 2, (h - smaller.height) // 2))
    return canvas.rotate(degrees, Image.Resampling.BILINEAR)
