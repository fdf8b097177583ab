"""Pillow's BICUBIC resize as preprocess.json defines it: the horizontal pass, then the
vertical one, each rounded to 8 bits (what the browser's resampler does too).

Pillow 13 runs the vertical pass first where it counts that as cheaper (1000x3000 ->
256x768, 333x777 -> 256x597), which rounds differently by up to 24 levels; two
single-axis calls keep the order. `resized_window` resamples only the output pixels a
crop keeps, and only the input rows they read: a 640x480 photo's 224-px centre crop costs
about two thirds of resizing it whole. Its pixels equal the whole resize's to within one
level on under 1 % of them (about one in a thousand when shrinking; the box's
floating-point offset)."""

import math

from PIL import Image

BICUBIC = Image.Resampling.BICUBIC
SUPPORT = 2.0  # the bicubic kernel's radius, widened by the scale factor when shrinking


def resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` resized to `size` (width, height), pass by pass."""
    if size[0] != image.width:
        image = image.resize((size[0], image.height), BICUBIC, reducing_gap=None)
    if size[1] != image.height:
        image = image.resize(size, BICUBIC, reducing_gap=None)
    return image


def resized_window(
    image: Image.Image, size: tuple[int, int], window: tuple[int, int, int, int]
) -> Image.Image:
    """`resized(image, size).crop(window)`, computing only the window."""
    width, height = image.size
    left, top, right, bottom = window
    sx, sy = width / size[0], height / size[1]
    first, last = _rows_read(top, bottom, sy, height) if size[1] != height else (top, bottom)
    if size[0] != width:
        box = (left * sx, float(first), right * sx, float(last))
        image = image.resize((right - left, last - first), BICUBIC, box=box, reducing_gap=None)
    else:
        image = image.crop((left, first, right, last))
    if size[1] == height:
        return image
    # The kept rows, in the coordinates of the rows the horizontal pass made.
    rows = (0.0, top * sy - first, float(right - left), bottom * sy - first)
    return image.resize((right - left, bottom - top), BICUBIC, box=rows, reducing_gap=None)


def _rows_read(top: int, bottom: int, scale: float, height: int) -> tuple[int, int]:
    """The input rows the vertical pass reads for output rows top..bottom-1, with a row
    of margin each side so no kernel is cut where the whole resize's is not."""
    support = SUPPORT * max(scale, 1.0)
    first = math.floor((top + 0.5) * scale - support) - 1
    last = math.ceil((bottom - 0.5) * scale + support) + 1
    return max(0, first), min(height, last)
