"""EMBED_RUNTIME: the embedder times the engines it could serve with on the tiny
model's real export, keeps only those whose answers match the fp32 graph, serves the
fastest, and keeps the choice next to the export for the next start."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from structlog.testing import capture_logs

from photosearch.common.model_files import ModelFiles
from photosearch_embedder import engines
from photosearch_embedder.engines import Engine
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.resolve import read_export
from photosearch_embedder.runtime_cache import CHOICE_FILE
from photosearch_embedder.runtime_choice import (
    ChoiceRequest,
    RuntimeUnavailable,
    candidates,
    choose,
)
from photosearch_embedder.runtime_trials import MIN_COSINE
from tests.support.embedder_models import cosine, exported_tiny
from tests.unit.embedder.test_manager import pixels

QUICK = 0.05  # seconds each candidate is timed: enough to rank, short for a test


@pytest.fixture
def model(tiny_model: ModelFiles, tmp_path: Path) -> ModelFiles:
    """A private copy of the tiny fp32 export (the choice writes next to it)."""
    shutil.copytree(tiny_model.directory, tmp_path / "model")
    return read_export(tmp_path / "model")


def quick(setting: str = "auto", **values: object) -> ChoiceRequest:
    return ChoiceRequest(setting, probe_seconds=QUICK, batch_size=4, **values)  # type: ignore[arg-type]


def without(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make `packages` look uninstalled to the engines."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        engines.importlib.util,
        "find_spec",
        lambda name, *a: None if name in packages else real(name, *a),
    )


LOCAL_FP32 = Engine("onnxruntime", "fp32", "local.onnx")


def per_graph(
    fingerprint: list[Engine], local: tuple[Engine, ...] = (LOCAL_FP32,)
) -> Callable[[str], list[Engine]]:
    """The candidates choose() tries: `fingerprint` for that graph, `local` for the other."""
    return lambda graph: fingerprint if graph == "fingerprint" else list(local)


def impostor(files: ModelFiles, name: str = "impostor.onnx") -> Engine:
    """The fingerprint graph with its largest weight scrambled: the same shapes and
    speed, different answers (what a broken runtime or precision would give)."""
    graph = onnx.load(str(files.onnx_path))
    largest = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    weights = numpy_helper.to_array(largest)
    scrambled = np.random.default_rng(0).permutation(weights.ravel()).reshape(weights.shape)
    largest.CopyFrom(numpy_helper.from_array(scrambled.astype(weights.dtype), largest.name))
    onnx.save(graph, str(files.directory / name))
    return Engine("onnxruntime", "fp32", name)


def test_auto_serves_the_fastest_candidate_whose_answers_match_fp32(model: ModelFiles) -> None:
    choice = choose(model, quick())
    for graph in (choice.fingerprint, choice.local):
        assert graph is not None
        names = {t.engine.name for t in graph.trials}
        assert {
            "onnxruntime fp32",
            "openvino fp32",
            "openvino bf16",
            "openvino int8",
            "torch bf16",
        } == names
        good = [t for t in graph.trials if not t.problem]
        assert good and all(t.min_cosine is not None and t.min_cosine >= MIN_COSINE for t in good)
        assert graph.engine == max(good, key=lambda t: t.rate).engine
        assert graph.rate > 0
    assert not choice.cached and choice.setting == "auto"
    assert "fingerprint: " in choice.summary() and "local: " in choice.summary()


async def test_the_chosen_engines_serve_what_fp32_computes(model: ModelFiles) -> None:
    """Whatever won, the manager's vectors and local cells agree with onnxruntime fp32."""
    forced = Engine("openvino", "int8", "model_fp32.onnx")
    choice = choose(
        model,
        quick(),
        engines=per_graph([forced], (Engine("openvino", "bf16", "local.onnx"),)),
    )
    assert choice.fingerprint.engine == forced
    assert choice.local is not None and choice.local.engine.runtime == "openvino"
    served, reference = ModelManager(model, choice=choice), ModelManager(model)
    batch = pixels(model, 3)
    assert cosine(await served.encode(batch), await reference.encode(batch)).min() >= MIN_COSINE
    local = served.preprocess.local
    assert local is not None
    tensor = np.random.default_rng(1).normal(size=(1, 3, 224, 308)).astype(np.float32)
    got, expected = await served.describe(tensor), await reference.describe(tensor)
    cells = lambda grid: grid.reshape(grid.shape[0], -1).T  # noqa: E731
    assert cosine(cells(got), cells(expected)).min() >= 0.99
    await served.close()
    await reference.close()


def test_a_candidate_whose_answers_drift_is_never_chosen_nor_timed(model: ModelFiles) -> None:
    wrong = impostor(model)
    right = Engine("onnxruntime", "fp32", model.onnx)
    with capture_logs() as logs:
        choice = choose(
            model,
            quick(),
            engines=per_graph([wrong, right]),
        )
    assert choice.fingerprint.engine == right
    trial = next(t for t in choice.fingerprint.trials if t.engine == wrong)
    assert trial.rate == 0 and trial.min_cosine is not None and trial.min_cosine < MIN_COSINE
    assert "drifts from fp32" in trial.problem
    rejected = [e for e in logs if e["event"] == "runtime.rejected"]
    assert [e["file"] for e in rejected] == ["impostor.onnx"]
    with pytest.raises(RuntimeUnavailable, match="no engine can run the fingerprint graph"):
        choose(model, quick(threads=1), engines=lambda graph: [wrong])


def test_the_choice_is_kept_next_to_the_export_and_reused_after_a_restart(
    model: ModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    without(monkeypatch, "torch")  # its trials take seconds each (test_torch_engine.py)
    first = choose(model, quick())
    assert (model.directory / CHOICE_FILE).is_file()
    with capture_logs() as logs:
        again = choose(read_export(model.directory), quick())  # a new process reads it
    assert again.cached and not first.cached
    assert again.fingerprint == first.fingerprint and again.local == first.local
    assert again.measured_at == first.measured_at
    assert [e["event"] for e in logs] == ["runtime.cached"]
    # Other threads (or another kind of host) measure anew, beside the first entry.
    other = choose(model, quick(threads=1))
    assert not other.cached and other.host != first.host
    assert choose(model, quick()).cached and choose(model, quick(threads=1)).cached


def test_a_cached_choice_is_checked_again_and_remade_when_it_no_longer_holds(
    model: ModelFiles,
) -> None:
    forced = Engine("openvino", "int8", "model_fp32.onnx")
    only = per_graph([forced])
    first = choose(model, quick(), engines=only)
    # Its int8 graph removed: checked again (which makes it again), still served.
    shutil.rmtree(model.directory / "openvino-int8")
    again = choose(model, quick(), engines=only)
    assert again.cached and again.fingerprint.engine == forced
    assert (model.directory / "openvino-int8").is_dir()
    # An entry naming a graph that is gone: measured anew, the entry replaced.
    path = model.directory / CHOICE_FILE
    document = json.loads(path.read_text())
    for entry in document.values():
        entry["choice"]["fingerprint"]["engine"]["graph"] = "gone.onnx"
    path.write_text(json.dumps(document))
    with capture_logs() as logs:
        remade = choose(model, quick(), engines=only)
    assert "runtime.cache_stale" in [e["event"] for e in logs]
    assert not remade.cached and remade.fingerprint.engine == forced
    assert remade.measured_at >= first.measured_at
    # A file that is not a document at all: measured anew and rewritten.
    path.write_text("[1, 2")
    assert not choose(model, quick(), engines=only).cached
    assert choose(model, quick(), engines=only).cached


def torch_loaded_by_choosing(directory: Path, setting: str) -> bool:
    """Whether choosing with `setting` in a fresh interpreter left torch in its modules."""
    probe = (
        "import sys; from pathlib import Path; "
        "from photosearch_embedder.resolve import read_export; "
        "from photosearch_embedder.runtime_choice import ChoiceRequest, choose; "
        "choose(read_export(Path(sys.argv[1])), "
        "ChoiceRequest(sys.argv[2], probe_seconds=0.05, batch_size=4)); "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(directory), setting],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()[-1] == "True"


def test_choosing_never_loads_pytorch_into_the_serving_process(model: ModelFiles) -> None:
    """NNCF imports PyTorch when it is installed: its quantisation runs in a child."""
    loaded = torch_loaded_by_choosing(model.directory, "openvino")
    trials = json.loads((model.directory / CHOICE_FILE).read_text())
    names = [
        t["engine"]["precision"]
        for entry in trials.values()
        for t in entry["choice"]["fingerprint"]["trials"]
        if not t["problem"]
    ]
    assert "int8" in names  # NNCF did run
    assert not loaded


def test_a_runtime_cache_elsewhere_leaves_the_export_untouched(
    model: ModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the model cache is read-only (Kubernetes mounts it so), EMBED_RUNTIME_CACHE_DIR
    holds the choice and OpenVINO's int8 graphs, one folder per model."""
    without(monkeypatch, "torch")
    before = sorted(p.name for p in model.directory.iterdir())
    elsewhere = tmp_path / "runtime-cache"
    choice = choose(model, quick(cache_dir=elsewhere))
    folder = ModelFiles.directory_for(elsewhere, model.model_id)
    assert (folder / CHOICE_FILE).is_file() and (folder / "openvino-int8").is_dir()
    assert sorted(p.name for p in model.directory.iterdir()) == before
    assert choice.cache == folder
    again = choose(model, quick(cache_dir=elsewhere))
    assert again.cached and again.cache == folder


def test_a_runtime_that_is_not_installed_is_skipped_with_a_log_line(
    model: ModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    without(monkeypatch, "openvino", "nncf", "torch")
    with capture_logs() as logs:
        choice = choose(model, quick())
    assert choice.fingerprint.engine == Engine("onnxruntime", "fp32", "model_fp32.onnx")
    skipped = [e for e in logs if e["event"] == "runtime.skipped"]
    assert {e["engine"] for e in skipped} == {
        "openvino fp32",
        "openvino bf16",
        "openvino int8",
        "torch bf16",
    }
    assert all(e["engine"].split()[0] in e["reason"] for e in skipped)
    assert all("not installed" in e["reason"] for e in skipped)
    with pytest.raises(RuntimeUnavailable, match="openvino is not installed"):
        choose(model, quick("openvino"))


def test_only_nncf_missing_leaves_openvino_fp32_and_bf16(
    model: ModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    without(monkeypatch, "nncf")
    choice = choose(model, quick("openvino"))
    problems = {t.engine.name: t.problem for t in choice.fingerprint.trials}
    assert problems["openvino int8"] == "the Python package nncf is not installed"
    assert problems["openvino fp32"] == "" and choice.fingerprint.engine.runtime == "openvino"


def test_onnxruntime_runs_the_export_as_exported_without_timing(model: ModelFiles) -> None:
    choice = choose(model, quick("onnxruntime"))
    assert choice.fingerprint.engine == Engine("onnxruntime", "fp32", model.onnx)
    assert choice.fingerprint.trials == () and not (model.directory / CHOICE_FILE).exists()


def test_an_int8_export_keeps_fp32_beside_it_as_the_reference(embedder_models: Path) -> None:
    files = exported_tiny(embedder_models, "int8")
    assert files.onnx == "model_int8.onnx" and "model_fp32.onnx" in files.files
    names = [e.name for e in candidates(files, "auto", "cpu", "fingerprint")]
    assert names == [
        "onnxruntime int8",
        "onnxruntime fp32",
        "openvino fp32",
        "openvino bf16",
        "openvino int8",
        "torch bf16",
    ]
    assert [e.graph for e in candidates(files, "auto", "cpu", "fingerprint")][2:] == [
        "model_fp32.onnx"
    ] * 4
    # On a GPU: onnxruntime's CUDA provider and PyTorch on CUDA.
    assert [e.name for e in candidates(files, "auto", "cuda", "local")] == [
        "onnxruntime fp32",
        "torch bf16",
    ]
    assert [e.name for e in candidates(files, "torch", "cpu", "fingerprint")] == [
        "torch fp32",
        "torch bf16",
    ]


def test_nncf_is_imported_with_its_usage_reporting_off() -> None:
    """NNCF reports usage to Google Analytics unless told not to; a fresh interpreter
    (not pytest, which nncf exempts by itself) shows the embedder's import turns it off."""
    probe = (
        "from photosearch_embedder.engines import import_nncf; import_nncf(); "
        "from nncf.telemetry import wrapper; print(type(wrapper.telemetry).__name__)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNCF")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "MagicMock"


def test_int8_weights_use_half_the_range_where_the_cpu_has_no_vnni(tmp_path: Path) -> None:
    """Without VNNI, OpenVINO's 8-bit kernels saturate: NNCF's overflow fix on every layer
    (docs/benchmarks/embedder.md); with it, NNCF's default."""
    cpuinfo = tmp_path / "cpuinfo"
    flags = "fpu sse2 avx avx2 fma"
    cpuinfo.write_text(
        f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n"
    )
    assert engines.int8_overflow_fix(cpuinfo) == "enable"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags} avx512f avx512_vnni\n")
    assert engines.int8_overflow_fix(cpuinfo) == "first_layer_only"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags} avx_vnni\n")
    assert engines.int8_overflow_fix(cpuinfo) == "first_layer_only"
    assert engines.int8_overflow_fix(tmp_path / "absent") == "first_layer_only"


def test_int8_graphs_of_each_overflow_fix_are_kept_apart(
    model: ModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model cache shared by hosts of both kinds holds one int8 graph per fix."""
    from photosearch_embedder.preprocess import PreprocessSpec
    from photosearch_embedder.runtime_trials import calibration_inputs

    inputs = calibration_inputs(PreprocessSpec.from_json(model.preprocess()), "fingerprint")
    made = {}
    for fix in ("first_layer_only", "enable"):
        monkeypatch.setattr(engines, "int8_overflow_fix", lambda fix=fix: fix)
        made[fix] = engines.openvino_int8(model.directory, model.onnx, inputs)
    assert made["first_layer_only"] != made["enable"]
    assert made["enable"].parent.name.endswith("-enable") and made["enable"].is_file()
    assert made["first_layer_only"].is_file()
