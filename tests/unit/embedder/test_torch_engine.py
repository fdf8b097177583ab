"""EMBED_RUNTIME=torch, and PyTorch bf16 as a candidate of auto: the export's graphs rebuilt
from the weights the export was made from, checked against the fp32 graph like every other
candidate, tried in a child process so that a process serving with another runtime never
loads torch."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from photosearch.common.model_files import ModelFiles
from photosearch_embedder.engines import Engine
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.resolve import read_export
from photosearch_embedder.runtime_cache import CHOICE_FILE
from photosearch_embedder.runtime_choice import ChoiceRequest, RuntimeUnavailable, choose
from photosearch_embedder.runtime_trials import MIN_COSINE
from tests.support.embedder_models import cosine, save_tiny_dinov2
from tests.unit.embedder.test_manager import pixels
from tests.unit.embedder.test_runtime_choice import per_graph, torch_loaded_by_choosing

FINGERPRINT_TORCH = [Engine("torch", "fp32", "model_fp32.onnx")]


@pytest.fixture
def model(tiny_model: ModelFiles, tmp_path: Path) -> ModelFiles:
    """A private copy of the tiny fp32 export (the choice writes next to it)."""
    shutil.copytree(tiny_model.directory, tmp_path / "model")
    return read_export(tmp_path / "model")


def quick(setting: str = "auto") -> ChoiceRequest:
    return ChoiceRequest(setting, probe_seconds=0.05, batch_size=4)  # type: ignore[arg-type]


def with_source(files: ModelFiles, source: Path) -> ModelFiles:
    """The export, its export.json naming `source` as the weights it was made from."""
    path = files.directory / "export.json"
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "source": str(source)}))
    return read_export(files.directory)


async def test_torch_serves_both_graphs_as_fp32_computes_them(model: ModelFiles) -> None:
    choice = choose(model, quick("torch"))
    assert choice.fingerprint.engine.runtime == "torch"
    assert choice.local is not None and choice.local.engine.runtime == "torch"
    names = {t.engine.name for t in choice.fingerprint.trials}
    assert names == {"torch fp32", "torch bf16"}
    served, reference = ModelManager(model, choice=choice), ModelManager(model)
    batch = pixels(model, 3)
    assert cosine(await served.encode(batch), await reference.encode(batch)).min() >= MIN_COSINE
    tensor = np.random.default_rng(1).normal(size=(1, 3, 224, 308)).astype(np.float32)
    got, expected = await served.describe(tensor), await reference.describe(tensor)
    cells = lambda grid: grid.reshape(grid.shape[0], -1).T  # noqa: E731
    assert cosine(cells(got), cells(expected)).min() >= MIN_COSINE
    await served.close()
    await reference.close()


def test_weights_other_than_the_graphs_are_refused_and_never_timed(
    model: ModelFiles, tmp_path: Path
) -> None:
    """An export whose source checkpoint was replaced: PyTorch computes another model."""
    other = with_source(model, save_tiny_dinov2(tmp_path / "other", seed=1))
    right = Engine("onnxruntime", "fp32", other.onnx)
    with capture_logs() as logs:
        choice = choose(
            other,
            quick(),
            engines=per_graph([*FINGERPRINT_TORCH, right]),
        )
    assert choice.fingerprint.engine == right
    trial = choice.fingerprint.trials[0]
    assert trial.rate == 0 and trial.min_cosine is not None and trial.min_cosine < MIN_COSINE
    assert [e["engine"] for e in logs if e["event"] == "runtime.rejected"] == ["torch fp32"]
    with pytest.raises(RuntimeUnavailable, match="torch bf16: drifts from fp32"):
        choose(other, quick("torch"))


def test_weights_that_are_not_on_this_host_skip_torch_with_a_log_line(
    model: ModelFiles, tmp_path: Path
) -> None:
    gone = with_source(model, tmp_path / "deleted-checkpoint")
    with capture_logs() as logs:
        choice = choose(
            gone,
            quick(),
            engines=per_graph([*FINGERPRINT_TORCH, Engine("onnxruntime", "fp32", gone.onnx)]),
        )
    assert choice.fingerprint.engine.runtime == "onnxruntime"
    skipped = [e for e in logs if e["event"] == "runtime.skipped"]
    assert [e["engine"] for e in skipped] == ["torch fp32"]
    assert "not here" in skipped[0]["reason"] and "deleted-checkpoint" in skipped[0]["reason"]


def test_auto_tries_torch_without_loading_it_into_the_serving_process(model: ModelFiles) -> None:
    loaded = torch_loaded_by_choosing(model.directory, "auto")
    document = json.loads((model.directory / CHOICE_FILE).read_text())
    (entry,) = document.values()
    torch = [
        t for t in entry["choice"]["fingerprint"]["trials"] if t["engine"]["runtime"] == "torch"
    ]
    assert len(torch) == 1 and torch[0]["min_cosine"] is not None  # it ran, in a child
    assert not loaded
