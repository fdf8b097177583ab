import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.quality.compress import dequantise, fit_pca, quantise
from tools.quality.datasets import Photo, load_dataset
from tools.quality.duplicates import (
    PairScore,
    distinct_pairs_above,
    false_negatives,
    recommend_threshold,
    summary,
)
from tools.quality.robustness import NEAR_DUPLICATE, TRANSFORMS, encode, make_copies


def photo_file(tmp_path: Path, name: str = "a.png", size: tuple[int, int] = (120, 80)) -> Path:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return path


def test_every_transform_makes_a_decodable_copy_of_the_expected_shape(tmp_path):
    path = photo_file(tmp_path)
    copies = make_copies([("ds", Photo(path, "x", "v", "catalog"))])
    assert [c.transform for c in copies] == list(TRANSFORMS)
    sizes = {c.transform: Image.open(io.BytesIO(c.data)).size for c in copies}
    assert sizes["crop50"] == (60, 40)
    assert sizes["rot90"] == (80, 120)
    assert max(sizes["tiny64"]) == 64
    assert sizes["strip_cut"][1] / sizes["strip_cut"][0] == pytest.approx(6, rel=0.1)
    assert sizes["strip_page"][1] / sizes["strip_page"][0] == pytest.approx(6, rel=0.01)
    assert sizes["pasted"] == (640, 480)
    assert set(NEAR_DUPLICATE) < set(TRANSFORMS)


def test_copies_are_the_same_on_every_run(tmp_path):
    path = photo_file(tmp_path)
    first = make_copies([("ds", Photo(path, "x", "v", "catalog"))], ["pasted", "mirror"])
    second = make_copies([("ds", Photo(path, "x", "v", "catalog"))], ["pasted", "mirror"])
    assert [c.data for c in first] == [c.data for c in second]


def test_jpeg20_copy_is_smaller_than_the_others():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8))
    assert len(encode(image, "jpeg20")) < len(encode(image, "mirror"))


def test_false_negatives_by_score_or_by_what_was_reported():
    pairs = [PairScore("mirror", "m1", 0.95), PairScore("mirror", "m2", 0.85)]
    assert false_negatives(pairs, 0.9) == {"mirror": ["m2"]}
    assert false_negatives(pairs, 0.9, reported={"m2"}) == {"mirror": ["m1"]}


def test_recommended_threshold_catches_every_near_duplicate():
    pairs = [
        PairScore("mirror", "a", 0.934),
        PairScore("blur", "b", 0.871),
        PairScore("pasted", "c", 0.2),  # not a near-duplicate: does not drag it down
    ]
    t = recommend_threshold(pairs, ["mirror", "blur"])
    assert t == pytest.approx(0.87)
    report = summary(pairs, t, ["mirror", "blur"])
    assert report["near_duplicate_false_negatives"] == 0
    assert report["transforms"]["pasted"]["false_negatives"] == 1


def test_distinct_pairs_above_ignores_photos_of_the_same_item():
    m = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert distinct_pairs_above(m, ["a", "a", "b"], 0.9) == 0
    assert distinct_pairs_above(m, ["a", "b", "c"], 0.9) == 1


def test_pca_keeps_the_main_directions_and_int8_round_trips():
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.normal(size=(32, 32)))[0][:4]
    x = rng.normal(size=(500, 4)) * [10, 5, 3, 2] @ basis + 0.01 * rng.normal(size=(500, 32))
    projection = fit_pca(x.astype(np.float32), 4)
    reduced = projection.project(x.astype(np.float32))
    assert reduced.shape == (500, 4)
    assert np.allclose(np.linalg.norm(reduced, axis=1), 1, atol=1e-5)
    codes = quantise(reduced)
    assert codes.dtype == np.int8
    back = dequantise(codes)
    assert np.min(np.sum(back * reduced, axis=1)) > 0.999
    with pytest.raises(ValueError):
        fit_pca(x.astype(np.float32), 64)


def test_load_dataset_reads_a_manifest_and_refuses_orphan_queries(tmp_path):
    photo_file(tmp_path, "c.png")
    photo_file(tmp_path, "q.png")
    (tmp_path / "manifest.csv").write_text(
        "file,group_id,variant,role\nc.png,g1,original,catalog\nq.png,g1,blur,query\n"
    )
    d = load_dataset(tmp_path)
    assert [p.item for p in d.catalog] == ["g1"] and d.queries[0].view == "blur"
    (tmp_path / "manifest.csv").write_text("file,item_id,view,role\nq.png,g2,x,query\n")
    with pytest.raises(ValueError, match="no catalog image"):
        load_dataset(tmp_path)
