"""One backbone pass for both the fingerprint and the regions: the network vector of the
region pass's input (the whole photo sized as the export's local graph takes it: long side
448, sides multiples of 32) in place of the 224-px centre view's. Where the model fuses a colour
histogram into its fingerprint, the histogram is kept from the 224-px view: it is a
pooling of the pixels, not a second pass of the network.

The descriptor graph (graph.py) gives that vector: its fingerprint output is the whole
network's, so with a 448-px input one pass yields both the regions and the fingerprint.
What that pass costs against the two of today is timed by `pass_costs`."""

import hashlib
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from photosearch_embedder.models import ColourFusion, spec_for
from tools.quality.datasets import Photo
from tools.quality.extract import Extractor, session
from tools.quality.graph import FINGERPRINT, INPUT


def fused(fingerprint: np.ndarray, network: np.ndarray, colour: ColourFusion | None) -> np.ndarray:
    """`fingerprint` (the export's vector of the 224-px view) with its network part
    replaced by the unit vector `network`; the colour part, if any, kept."""
    if colour is None:
        unit: np.ndarray = network / np.linalg.norm(network)
        return unit
    split = len(fingerprint) - colour.dim
    if split != len(network):
        raise ValueError(f"network vector of {len(network)} numbers; the export's has {split}")
    h = fingerprint[split:]
    h = h / max(float(np.linalg.norm(h)), 1e-12)
    out = np.concatenate([network * colour.weight**0.5, h * (1 - colour.weight) ** 0.5])
    result: np.ndarray = out / np.linalg.norm(out)
    return result


def region_pass_network(extractor: Extractor, photo: Photo) -> np.ndarray:
    image = extractor.decode(photo.path.read_bytes())
    tensor = extractor.preprocess.local_tensor(image)
    out: np.ndarray = extractor.descriptor_graph.run([FINGERPRINT], {INPUT: tensor})[0][0]
    return out


def one_pass_fingerprints(
    model: str,
    extractor: Extractor,
    photos: Sequence[Photo],
    fingerprints: np.ndarray,
    cache_dir: Path,
) -> np.ndarray:
    """(len(photos), dim): each photo's one-pass fingerprint; the network vectors are
    cached per photo set (float16, as the other caches)."""
    local = extractor.preprocess.local
    assert local is not None, "the export has no local section"
    key = json.dumps([extractor.cache_tag, model, local.long_side, [p.key for p in photos]])
    path = cache_dir / f"one-pass-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"
    if not path.is_file():
        vectors = np.stack([region_pass_network(extractor, p) for p in photos])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors.astype(np.float16))
        tmp.replace(path)
    network = np.load(path).astype(np.float32)
    colour = spec_for(model).colour
    return np.stack([fused(f, n, colour) for f, n in zip(fingerprints, network, strict=True)])


def _median_ms(graph: ort.InferenceSession, feeds: dict[str, np.ndarray], rounds: int) -> float:
    graph.run(None, feeds)  # the first run allocates
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        graph.run(None, feeds)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def pass_costs(
    extractor: Extractor,
    local_onnx: Path,
    photos: Sequence[Photo],
    rounds: int,
    network_onnx: Path | None = None,
) -> dict[str, float]:
    """Median ms per photo, batch 1, in onnxruntime: today's two passes (the export's
    224-px fingerprint graph, then the export's local graph on the 448-px input) against
    one pass of the whole network on the 448-px input (the descriptor graph). With
    `network_onnx` (the same network's fingerprint graph without the colour part), the
    colour part's cost too, which one pass still pays: the colour graph's time less it."""
    local = session(local_onnx)
    local_input = local.get_inputs()[0].name
    network = session(network_onnx) if network_onnx else None
    times: dict[str, list[float]] = {"fingerprint": [], "local": [], "one_pass": [], "network": []}
    for photo in photos:
        image = extractor.decode(photo.path.read_bytes())
        view = extractor.fingerprint_tensor(image)
        big = extractor.preprocess.local_tensor(image)
        runs = {
            "fingerprint": (extractor.fingerprint_graph, {INPUT: view}),
            "local": (local, {local_input: big}),
            "one_pass": (extractor.descriptor_graph, {INPUT: big}),
        }
        if network is not None:
            runs["network"] = (network, {INPUT: view})
        for name, (graph, feeds) in runs.items():
            times[name].append(_median_ms(graph, feeds, rounds))
    p50 = {name: statistics.median(values) for name, values in times.items() if values}
    out = {
        "photos": len(photos),
        "fingerprint_ms_p50": p50["fingerprint"],
        "local_ms_p50": p50["local"],
        "two_passes_ms_p50": round(p50["fingerprint"] + p50["local"], 2),
        "one_pass_ms_p50": p50["one_pass"],
    }
    if "network" in p50:
        colour = max(0.0, p50["fingerprint"] - p50["network"])
        out["colour_part_ms_p50"] = round(colour, 2)
        out["one_pass_with_colour_ms_p50"] = round(p50["one_pass"] + colour, 2)
    one = out.get("one_pass_with_colour_ms_p50", out["one_pass_ms_p50"])
    out["one_over_two"] = round(one / out["two_passes_ms_p50"], 3)
    return out
