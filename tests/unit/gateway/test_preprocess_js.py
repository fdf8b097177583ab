"""The page's preprocessing (the fingerprint module's preprocess.js) run in Node against
Pillow: the resize is bit-exact, and the whole tensor matches the embedder's spec; the local
pass's size, turns, tensor and int8 codes (codes.js) match the contract."""

import base64
import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from photosearch.common.local import (
    LocalGrid,
    from_feature_map,
    from_proto,
    keep_salient,
    local_contrast,
    quantise,
    to_proto,
)
from photosearch.events.v1 import events_pb2
from photosearch_embedder.preprocess import LocalSpec
from photosearch_embedder.resample import resized
from photosearch_gateway.routes.assets import STATIC_DIR
from tests.support.embedder_models import photo_like

PREPROCESS_JS = STATIC_DIR / "fingerprint" / "preprocess.js"
CODES_JS = STATIC_DIR / "fingerprint" / "codes.js"
SPEC = {
    "version": 1,
    "alpha_background": [255, 255, 255],
    "resize": {"short_side": 64, "bicubic_a": -0.5},
    "center_crop": {"width": 56, "height": 56},
    "scale": 1 / 255,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")

RUNNER = """
import { readFileSync, writeFileSync } from "node:fs";
import * as p from "%s";
import * as codes from "%s";
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const src = new Uint8Array(readFileSync(job.input));
if (job.kind === "rotate") {
  const turned = p.rotateClockwise(src, job.width, job.height, job.degrees);
  writeFileSync(job.output, turned.rgb);
} else if (job.kind === "local_size") {
  const sizes = job.sizes.map(([w, h]) => p.localSize(w, h, job.local));
  writeFileSync(job.output, JSON.stringify(sizes));
} else if (job.kind === "local_tensor") {
  const t = p.toLocalTensor(src, job.width, job.height, job.spec);
  writeFileSync(job.output, new Uint8Array(t.data.buffer));
} else if (job.kind === "quantise") {
  const map = new Float32Array(src.buffer, src.byteOffset, src.byteLength / 4);
  writeFileSync(job.output, codes.base64(codes.quantise(map, job.dim, job.rows, job.cols)));
} else if (job.kind === "salient") {
  const grid = new Int8Array(src.buffer, src.byteOffset, src.byteLength);
  const kept = codes.keepSalient(grid, job.rows, job.cols, job.dim, job.budget);
  writeFileSync(job.output, JSON.stringify({ cells: kept.cells, codes: codes.base64(kept.codes) }));
} else if (job.kind === "resize") {
  writeFileSync(job.output, p.resizeBicubic(src, job.width, job.height, job.out_w, job.out_h));
} else if (job.kind === "flatten") {
  writeFileSync(job.output, p.flattenAlpha(src, job.width, job.height, job.background));
} else {
  const t = p.toTensor(src, job.width, job.height, job.spec);
  writeFileSync(job.output, new Uint8Array(t.data.buffer));
}
"""


def run_js(tmp_path: Path, pixels: np.ndarray, **job: object) -> bytes:
    (tmp_path / "in.raw").write_bytes(np.ascontiguousarray(pixels).tobytes())
    runner = tmp_path / "run.mjs"
    runner.write_text(RUNNER % (PREPROCESS_JS.as_uri(), CODES_JS.as_uri()))
    job.update(input=str(tmp_path / "in.raw"), output=str(tmp_path / "out.raw"))
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run(["node", str(runner), str(tmp_path / "job.json")], check=True, timeout=60)
    return (tmp_path / "out.raw").read_bytes()


@pytest.mark.parametrize(
    ("size", "out"), [((317, 201), (64, 40)), ((40, 90), (64, 144)), ((1500, 64), (64, 3))]
)
def test_resize_is_bit_exact_with_pillow(
    tmp_path: Path, size: tuple[int, int], out: tuple[int, int]
) -> None:
    pixels = photo_like(size[1], size[0], seed=size[0])
    want = np.asarray(
        Image.fromarray(pixels).resize(out, Image.Resampling.BICUBIC, reducing_gap=None)
    )
    got = run_js(
        tmp_path, pixels, kind="resize", width=size[0], height=size[1], out_w=out[0], out_h=out[1]
    )
    assert np.array_equal(np.frombuffer(got, np.uint8).reshape(want.shape), want)


@pytest.mark.parametrize(("size", "out"), [((451, 300), (448, 288)), ((333, 777), (256, 597))])
def test_resize_is_bit_exact_with_the_embedder_where_pillow_turns_the_passes_round(
    tmp_path: Path, size: tuple[int, int], out: tuple[int, int]
) -> None:
    # One Pillow call runs the vertical pass first for these shapes; the embedder and the
    # page both run the horizontal pass first.
    pixels = photo_like(size[1], size[0], seed=size[1])
    want = np.asarray(resized(Image.fromarray(pixels), out))
    got = run_js(
        tmp_path, pixels, kind="resize", width=size[0], height=size[1], out_w=out[0], out_h=out[1]
    )
    assert np.array_equal(np.frombuffer(got, np.uint8).reshape(want.shape), want)


def test_alpha_is_flattened_like_pillow_paste(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    flat = Image.new("RGB", image.size, (255, 255, 255))
    flat.paste(image, mask=image.getchannel("A"))
    got = run_js(tmp_path, rgba, kind="flatten", width=40, height=30, background=[255, 255, 255])
    assert np.array_equal(np.frombuffer(got, np.uint8).reshape(30, 40, 3), np.asarray(flat))


def test_tensor_matches_the_embedder_spec(tmp_path: Path) -> None:
    pixels = photo_like(150, 200, seed=3)
    image = Image.fromarray(pixels).resize((85, 64), Image.Resampling.BICUBIC, reducing_gap=None)
    left, top = (85 - 56) // 2, (64 - 56) // 2
    crop = np.asarray(image.crop((left, top, left + 56, top + 56)), dtype=np.float32)
    scaled = crop * np.float32(SPEC["scale"])
    want = ((scaled - np.float32(SPEC["mean"])) / np.float32(SPEC["std"])).transpose(2, 0, 1)
    got = run_js(tmp_path, pixels, kind="tensor", width=200, height=150, spec=SPEC)
    tensor = np.frombuffer(got, np.float32).reshape(3, 56, 56)
    assert np.allclose(tensor, want, atol=1e-6)


# --- the local pass ---------------------------------------------------------------------------

LOCAL = {"long_side": 448, "multiple": 32, "square": False, "dim": 64}


def local_size(width: int, height: int, long_side: int = 448, multiple: int = 32) -> list[int]:
    """The contract: long side `long_side`, short side round(short * long_side / long /
    multiple) * multiple, at least `multiple` (rounding half up); the embedder agrees."""
    scale = long_side / max(width, height)
    short = max(multiple, math.floor(min(width, height) * scale / multiple + 0.5) * multiple)
    size = [long_side, short] if width >= height else [short, long_side]
    assert list(LocalSpec(long_side, multiple, dim=64).size(width, height)) == size
    return size


def test_local_size_follows_the_contract(tmp_path: Path) -> None:
    sizes = [[640, 480], [480, 640], [4000, 3000], [1200, 200], [40, 30], [30, 2000], [448, 448]]
    sizes += [[w, 700] for w in range(300, 720, 7)]
    got = run_js(tmp_path, np.zeros(1, np.uint8), kind="local_size", sizes=sizes, local=LOCAL)
    assert json.loads(got) == [local_size(w, h) for w, h in sizes]
    square = run_js(
        tmp_path,
        np.zeros(1, np.uint8),
        kind="local_size",
        sizes=[[640, 480]],
        local={**LOCAL, "square": True},
    )
    assert json.loads(square) == [[448, 448]]


@pytest.mark.parametrize(
    ("degrees", "transpose"),
    [
        (90, Image.Transpose.ROTATE_270),  # Pillow counts counter-clockwise
        (180, Image.Transpose.ROTATE_180),
        (270, Image.Transpose.ROTATE_90),
    ],
)
def test_turning_the_photo_equals_pillows_transpose(
    tmp_path: Path, degrees: int, transpose: Image.Transpose
) -> None:
    pixels = photo_like(37, 53, seed=degrees)
    want = np.asarray(Image.fromarray(pixels).transpose(transpose))
    got = run_js(tmp_path, pixels, kind="rotate", width=53, height=37, degrees=degrees)
    assert np.array_equal(np.frombuffer(got, np.uint8).reshape(want.shape), want)


def test_local_tensor_is_the_whole_photo_resized_and_normalised(tmp_path: Path) -> None:
    pixels = photo_like(300, 500, seed=4)
    spec = {**SPEC, "local": LOCAL}
    size = tuple(local_size(500, 300))
    assert size == (448, 256)
    image = Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC, reducing_gap=None)
    scaled = np.asarray(image, dtype=np.float32) * np.float32(SPEC["scale"])
    want = ((scaled - np.float32(SPEC["mean"])) / np.float32(SPEC["std"])).transpose(2, 0, 1)
    got = run_js(tmp_path, pixels, kind="local_tensor", width=500, height=300, spec=spec)
    tensor = np.frombuffer(got, np.float32).reshape(3, 256, 448)
    assert np.allclose(tensor, want, atol=1e-6)


def test_codes_are_the_shared_codecs_int8_in_base64(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    dim, rows, cols = 64, 3, 5
    cells = rng.normal(size=(rows * cols, dim)).astype(np.float32)
    cells /= np.linalg.norm(cells, axis=1, keepdims=True)
    cells[0, :2] = [1.2, -1.3]  # out of range values clamp to +-127
    feature_map = np.ascontiguousarray(cells.T.reshape(dim, rows, cols))
    got = run_js(tmp_path, feature_map, kind="quantise", dim=dim, rows=rows, cols=cols)
    message = to_proto(from_feature_map(feature_map))
    assert base64.b64decode(got) == message.codes
    grid = from_proto(
        events_pb2.LocalDescriptors(rows=rows, cols=cols, dim=dim, codes=base64.b64decode(got))
    )
    assert grid.codes[0, 0] == 127 and grid.codes[0, 1] == -127


def photo_like_grid(rows: int, cols: int, dim: int, seed: int) -> np.ndarray:
    """(rows * cols, dim) int8 codes: a flat background (equal cells) around a textured
    object in the middle."""
    rng = np.random.default_rng(seed)
    cells = np.tile(rng.normal(size=dim), (rows, cols, 1))
    top, left = rows // 4, cols // 4
    cells[top : rows - top, left : cols - left] += rng.normal(
        0, 1.5, (rows - 2 * top, cols - 2 * left, dim)
    )
    flat = cells.reshape(rows * cols, dim)
    return quantise(flat / np.linalg.norm(flat, axis=1, keepdims=True))


def js_salient(tmp_path: Path, codes: np.ndarray, rows: int, cols: int) -> dict[str, Any]:
    job = {"kind": "salient", "rows": rows, "cols": cols, "dim": codes.shape[-1], "budget": 250}
    result: dict[str, Any] = json.loads(run_js(tmp_path, codes, **job))
    return result


@pytest.mark.parametrize(("rows", "cols", "seed"), [(22, 28, 1), (28, 22, 2), (32, 32, 3)])
def test_salient_cells_are_the_shared_codecs(
    tmp_path: Path, rows: int, cols: int, seed: int
) -> None:
    """Textured cells (no ties): the very cells keep_salient picks, with their codes."""
    dim = 64
    rng = np.random.default_rng(seed)
    unit = rng.normal(size=(rows * cols, dim))
    codes = quantise(unit / np.linalg.norm(unit, axis=1, keepdims=True))
    want = keep_salient(LocalGrid(rows, cols, np.arange(rows * cols, dtype=np.int32), codes))
    got = js_salient(tmp_path, codes, rows, cols)
    assert got["cells"] == want.index.tolist()
    assert base64.b64decode(got["codes"]) == want.codes.tobytes()


@pytest.mark.parametrize(("rows", "cols", "seed"), [(22, 28, 1), (28, 22, 2)])
def test_salient_cells_differ_only_among_equal_cells(
    tmp_path: Path, rows: int, cols: int, seed: int
) -> None:
    """A flat background (many equal cells, equal contrast but for float32 rounding in
    numpy): the page may pick other background cells than Python, never other kinds."""
    codes = photo_like_grid(rows, cols, 64, seed)
    grid = LocalGrid(rows, cols, np.arange(rows * cols, dtype=np.int32), codes)
    contrast = local_contrast(grid)
    want = set(keep_salient(grid).index.tolist())
    got = set(js_salient(tmp_path, codes, rows, cols)["cells"])
    assert len(got) == len(want) == 250
    threshold = np.sort(contrast)[::-1][249]
    assert all(abs(contrast[c] - threshold) < 1e-5 for c in got ^ want), sorted(got ^ want)


def test_a_small_grid_is_sent_whole(tmp_path: Path) -> None:
    codes = photo_like_grid(10, 12, 64, seed=4)
    got = js_salient(tmp_path, codes, 10, 12)
    assert got["cells"] == [] and base64.b64decode(got["codes"]) == codes.tobytes()
