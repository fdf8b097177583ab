"""A colour descriptor computed from the model's own input tensor, to be fused into the
fingerprint: v = normalize(concat(sqrt(w) * g, sqrt(1 - w) * h)), so that
cos(v_q, v_c) = w * cos(g_q, g_c) + (1 - w) * cos(h_q, h_c) and nothing downstream
(search, HNSW, duplicate report, browser) changes.

The histogram is soft (each pixel spreads over its neighbouring bins with a triangular
kernel), joint over three colour axes, averaged over the pixels of a pooled copy of
the crop, optionally per cell of a spatial grid, with the pixels' weights optionally
lowered for near-black pixels (turntable backgrounds) and away from the centre.
Every step is an elementwise op, a pooling or a mean: it exports to ONNX unchanged.
This numpy version drives the ablation; the embedder's PyTorch module does the same."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ColourSpec:
    space: str = "rgb"  # rgb | opponent | lab
    bins: int = 6  # per axis (the joint histogram has bins**3 cells)
    pool: int = 4  # average-pool the 224 crop by this factor first
    grid: int = 1  # 1 = whole crop, 2 = one histogram per quadrant
    dark: float = 0.0  # pixels with max(R, G, B) below this weigh 0 (ramp over 0.1)
    centre: float = 0.0  # Gaussian centre weight, sigma as a fraction of the side (0 = off)
    hellinger: bool = True  # sqrt of the histogram before L2 normalisation
    sigma_bins: float = 1.0  # kernel half-width in bins (1 = triangular partition of unity)

    @property
    def dim(self) -> int:
        return self.bins**3 * self.grid * self.grid

    def label(self) -> str:
        parts = [self.space, f"b{self.bins}", f"p{self.pool}"]
        if self.grid > 1:
            parts.append(f"g{self.grid}")
        if self.dark:
            parts.append(f"dark{self.dark}")
        if self.centre:
            parts.append(f"c{self.centre}")
        if not self.hellinger:
            parts.append("l1")
        if self.sigma_bins != 1.0:
            parts.append(f"s{self.sigma_bins}")
        return "-".join(parts)


def rgb_from_tensor(pixels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) normalised model input -> RGB in [0, 1]."""
    rgb = pixels * std[None, :, None, None] + mean[None, :, None, None]
    return np.asarray(np.clip(rgb, 0.0, 1.0))


def _pool(x: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return x
    n, c, h, w = x.shape
    return np.asarray(x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5)))


def _axes(rgb: np.ndarray, space: str) -> np.ndarray:
    """RGB (N, 3, H, W) in [0, 1] -> three axes, each in [0, 1]."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    if space == "rgb":
        return rgb
    if space == "opponent":
        o1 = (r - g + 1) / 2
        o2 = (r + g - 2 * b + 2) / 4
        o3 = (r + g + b) / 3
        return np.stack([o1, o2, o3], axis=1)
    if space == "lab":
        linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
        m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
        xyz = np.einsum("ij,njhw->nihw", m, linear)
        white = np.array([0.9505, 1.0, 1.089])[None, :, None, None]
        f = np.cbrt(np.maximum(xyz / white, 1e-4))
        lightness = (116 * f[:, 1] - 16) / 100
        a = (500 * (f[:, 0] - f[:, 1])) / 160 + 0.5
        bb = (200 * (f[:, 1] - f[:, 2])) / 160 + 0.5
        return np.asarray(np.clip(np.stack([lightness, a, bb], axis=1), 0.0, 1.0))
    raise ValueError(f"unknown colour space {space!r}")


def _soft_bins(values: np.ndarray, bins: int, sigma_bins: float) -> np.ndarray:
    """(N, H, W) in [0, 1] -> (N, bins, H, W) triangular memberships."""
    centres = (np.arange(bins) + 0.5) / bins
    clamped = np.clip(values, centres[0], centres[-1])
    distance = np.abs(clamped[:, None] - centres[None, :, None, None]) * bins
    return np.asarray(np.maximum(0.0, 1.0 - distance / sigma_bins))


def _weights(rgb: np.ndarray, spec: ColourSpec) -> np.ndarray:
    n, _, h, w = rgb.shape
    weight = np.ones((n, h, w))
    if spec.dark:
        brightest = rgb.max(axis=1)
        weight = weight * np.clip((brightest - spec.dark) / 0.1 + 0.5, 0.0, 1.0)
    if spec.centre:
        ys = (np.arange(h) + 0.5) / h - 0.5
        xs = (np.arange(w) + 0.5) / w - 0.5
        d2 = ys[:, None] ** 2 + xs[None, :] ** 2
        weight = weight * np.exp(-d2 / (2 * spec.centre**2))[None]
    return weight


def histogram(
    pixels: np.ndarray, spec: ColourSpec, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """(N, 3, 224, 224) model input -> (N, spec.dim) unit colour descriptors."""
    rgb = _pool(rgb_from_tensor(pixels.astype(np.float64), mean, std), spec.pool)
    axes = _axes(rgb, spec.space)
    memberships = [_soft_bins(axes[:, i], spec.bins, spec.sigma_bins) for i in range(3)]
    weight = _weights(rgb, spec)
    n, _, h, w = rgb.shape
    cells = []
    step_h, step_w = h // spec.grid, w // spec.grid
    for gy in range(spec.grid):
        for gx in range(spec.grid):
            window = (slice(None), slice(None), slice(gy * step_h, (gy + 1) * step_h),
                      slice(gx * step_w, (gx + 1) * step_w))  # fmt: skip
            a, b, c = (m[window] for m in memberships)
            m = weight[window[0], window[2], window[3]]
            joint = np.einsum("nihw,njhw,nkhw,nhw->nijk", a, b, c, m).reshape(n, -1)
            cells.append(joint / np.maximum(m.sum(axis=(1, 2)), 1e-6)[:, None])
    hist = np.concatenate(cells, axis=1)
    if spec.hellinger:
        hist = np.sqrt(np.maximum(hist, 0.0))
    norm = np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-12)
    return np.asarray(hist / norm, dtype=np.float32)


def fuse(g: np.ndarray, h: np.ndarray, weight: float) -> np.ndarray:
    """Unit g and h -> unit v whose cosine is weight * cos_g + (1 - weight) * cos_h."""
    v = np.concatenate([np.sqrt(weight) * g, np.sqrt(1.0 - weight) * h], axis=-1)
    return np.asarray(v / np.linalg.norm(v, axis=-1, keepdims=True), dtype=np.float32)
