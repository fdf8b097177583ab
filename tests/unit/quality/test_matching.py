import numpy as np

from tools.quality.extract import LocalFeatures, grid_xy, local_size
from tools.quality.matching import affine_inliers, local_score, mutual_nearest
from tools.quality.rerank import RerankSettings, global_item_scores, rerank, top_items


def unit_rows(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def random_cells(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).normal(size=(n, d)))


def features(cells: np.ndarray, rows: int, cols: int) -> LocalFeatures:
    return LocalFeatures(cells, grid_xy(rows, cols), (rows, cols), cols / rows)


def test_mutual_nearest_finds_a_permutation():
    c = random_cells(30)
    order = np.random.default_rng(1).permutation(30)
    m = mutual_nearest(c[order], c, 0.5)
    assert len(m) == 30
    assert np.array_equal(m.catalog, order[m.query])
    assert np.allclose(m.similarity, 1.0, atol=1e-5)


def test_mutual_nearest_drops_matches_below_the_floor_and_one_sided_ones():
    c = random_cells(10, seed=2)
    q = np.vstack([c[0], c[0]])  # both query cells want catalog 0; only one is mutual
    m = mutual_nearest(q, c, 0.5)
    assert len(m) == 1
    assert len(mutual_nearest(random_cells(5, seed=3), c, 0.99)) == 0
    assert len(mutual_nearest(np.zeros((0, 16), np.float32), c, 0.5)) == 0


def test_affine_inliers_recovers_a_known_map_among_outliers():
    rng = np.random.default_rng(4)
    src = rng.uniform(0, 28, size=(60, 2))
    a = np.array([[0.0, -1.2], [1.2, 0.0]])  # rotation by 90 degrees and a zoom
    dst = src @ a.T + np.array([30.0, 2.0])
    outliers = rng.choice(60, 20, replace=False)
    dst[outliers] = rng.uniform(0, 40, size=(20, 2))
    mask = affine_inliers(src, dst, threshold=1.0, iterations=300)
    expected = np.ones(60, bool)
    expected[outliers] = False
    assert mask[expected].all()
    assert mask[~expected].sum() <= 2  # a random outlier may land near the map by chance


def test_affine_inliers_needs_three_pairs_and_rejects_collapse():
    assert not affine_inliers(np.zeros((2, 2)), np.zeros((2, 2))).any()
    src = np.random.default_rng(5).uniform(0, 20, size=(20, 2))
    collapsed = np.zeros_like(src)  # everything onto one point: scale 0, not a view change
    assert affine_inliers(src, collapsed).sum() == 0


def test_local_score_same_photo_beats_another_photo():
    cells = random_cells(12 * 16, d=32, seed=6)
    photo = features(cells, 12, 16)
    other = features(random_cells(12 * 16, d=32, seed=7), 12, 16)
    same = local_score(photo, photo)
    assert same.matches == same.inliers == 12 * 16
    assert local_score(photo, other).inliers < 10


def test_local_score_survives_a_mirrored_grid_with_shuffled_cells():
    rows, cols = 10, 14
    cells = random_cells(rows * cols, d=32, seed=8)
    mirrored = cells.reshape(rows, cols, -1)[:, ::-1].reshape(rows * cols, -1)
    score = local_score(features(mirrored, rows, cols), features(cells, rows, cols))
    assert score.inliers == rows * cols  # a flip is an affine map


def test_local_size_keeps_the_long_side_and_rounds_the_short_to_32():
    assert local_size(640, 480, 448) == (448, 352)
    assert local_size(480, 640, 448) == (352, 448)
    assert local_size(1000, 150, 448) == (448, 64)
    assert local_size(6000, 10, 448) == (448, 32)


def test_global_item_scores_take_each_items_best_vector_and_view():
    catalog = unit_rows(np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]))
    owners = ["a", "b", "b"]
    scores = global_item_scores(unit_rows(np.array([[1.0, 0.1]])), catalog, owners)
    assert scores["a"] > scores["b"]
    views = unit_rows(np.array([[1.0, 0.1], [0.0, 1.0]]))
    assert global_item_scores(views, catalog, owners)["b"] > 0.99


def test_rerank_lifts_a_candidate_with_verified_evidence():
    rows, cols = 8, 8
    cells = random_cells(rows * cols, d=32, seed=9)
    query = features(cells, rows, cols)
    catalog = {
        "right": [features(cells, rows, cols)],
        "wrong": [features(random_cells(rows * cols, d=32, seed=10), rows, cols)],
    }
    scores = {"wrong": 0.8, "right": 0.6, "far": 0.1}
    settings = RerankSettings(top_k=2)
    new = rerank(scores, [query], lambda item: catalog.get(item, []), settings)
    assert top_items(new, 1) == ["right"]
    assert new["far"] == scores["far"]  # outside the top-k: untouched
