import numpy as np
import pytest
from PIL import Image

from photosearch_embedder.resample import resized, resized_window
from tests.support.embedder_models import photo_like

BICUBIC = Image.Resampling.BICUBIC


def photo_of(size: tuple[int, int], seed: int) -> Image.Image:
    width, height = size
    return Image.fromarray(photo_like(height, width, seed))


def spec_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """preprocess.json's rule written out: Pillow's horizontal pass, then its vertical."""
    horizontal = image.resize((size[0], image.height), BICUBIC, reducing_gap=None)
    return horizontal.resize(size, BICUBIC, reducing_gap=None)


# Shapes where one Pillow call runs the vertical pass first, shapes where it does not,
# upscaling, one axis unchanged, and thin photos.
SHAPES = [
    ((333, 777), (256, 597)),
    ((300, 257), (350, 256)),
    ((640, 480), (341, 256)),
    ((480, 640), (256, 341)),
    ((100, 90), (284, 256)),
    ((256, 400), (256, 256)),
    ((400, 256), (300, 256)),
    ((2, 700), (256, 89600 // 256)),
]


@pytest.mark.parametrize(("source", "size"), SHAPES)
def test_resizing_runs_the_horizontal_pass_first(source, size) -> None:
    image = photo_of(source, seed=source[0])
    assert np.array_equal(np.asarray(resized(image, size)), np.asarray(spec_resize(image, size)))


@pytest.mark.parametrize(("source", "size"), SHAPES)
def test_a_window_is_the_crop_of_the_whole_resize(source, size) -> None:
    image = photo_of(source, seed=source[1])
    whole = np.asarray(spec_resize(image, size), dtype=int)
    rng = np.random.default_rng(sum(source))
    windows = [(0, 0, *size), (size[0] // 4, size[1] // 3, size[0] - 1, size[1] - size[1] // 5)]
    for _ in range(4):
        left, top = rng.integers(0, size[0]), rng.integers(0, size[1])
        right, bottom = rng.integers(left + 1, size[0] + 1), rng.integers(top + 1, size[1] + 1)
        windows.append((int(left), int(top), int(right), int(bottom)))
    for left, top, right, bottom in windows:
        got = np.asarray(resized_window(image, size, (left, top, right, bottom)), dtype=int)
        difference = np.abs(got - whole[top:bottom, left:right])
        # The box's floating-point offset moves a rounding now and then, never more.
        assert difference.max() <= 1
        assert (difference > 0).mean() <= 0.01
