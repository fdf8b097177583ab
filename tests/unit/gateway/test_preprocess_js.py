"""The page's preprocessing (static/js/preprocess.js) run in Node against Pillow: the
resize is bit-exact, and the whole tensor matches the embedder's spec."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosearch_gateway.routes.assets import STATIC_DIR

PREPROCESS_JS = STATIC_DIR / "js" / "preprocess.js"
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
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const src = new Uint8Array(readFileSync(job.input));
if (job.kind === "resize") {
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
    runner.write_text(RUNNER % PREPROCESS_JS.as_uri())
    job.update(input=str(tmp_path / "in.raw"), output=str(tmp_path / "out.raw"))
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run(["node", str(runner), str(tmp_path / "job.json")], check=True, timeout=60)
    return (tmp_path / "out.raw").read_bytes()


def photo_like(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = np.stack([x * 255 / width, y * 255 / height, (x + y) % 255], axis=-1)
    return np.clip(smooth + rng.normal(0, 40, smooth.shape), 0, 255).astype(np.uint8)


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
