"""The one-pass fingerprint keeps the export's colour part and takes its network part
from the region pass: its cosines are the product's weighted sum of the two."""

import numpy as np
import pytest

from photosearch_embedder.models import COLOUR_FUSION
from tools.quality.one_pass import fused


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_the_network_part_is_replaced_and_the_colour_part_kept() -> None:
    rng = np.random.default_rng(0)
    w = COLOUR_FUSION.weight
    g224, g448 = unit(rng.normal(size=(2, 3, 24)))
    h = unit(rng.random((3, COLOUR_FUSION.dim)))
    exported = np.concatenate([g224 * w**0.5, h * (1 - w) ** 0.5], axis=1)
    one = np.stack([fused(e, n, COLOUR_FUSION) for e, n in zip(exported, g448, strict=True)])
    assert np.allclose(np.linalg.norm(one, axis=1), 1.0)
    want = w * (g448 @ g448.T) + (1 - w) * (h @ h.T)
    assert np.allclose(one @ one.T, want, atol=1e-6)
    assert not np.allclose(one @ one.T, exported @ exported.T, atol=1e-3)


def test_without_colour_the_network_vector_is_the_fingerprint() -> None:
    vector = np.asarray([3.0, 4.0])
    assert np.allclose(fused(np.asarray([1.0, 0.0]), vector, None), [0.6, 0.8])


def test_a_network_vector_of_another_size_is_refused() -> None:
    exported = np.zeros(16 + COLOUR_FUSION.dim)
    with pytest.raises(ValueError, match="network vector of 8 numbers; the export's has 16"):
        fused(exported, np.ones(8), COLOUR_FUSION)
