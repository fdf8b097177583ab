"""Which engine runs each graph of a model on this host, decided by measurement.

Which runtime is fastest differs between hosts of the same kind (onnxruntime's int8
kernels ran 2.3x slower on one than on another; OpenVINO's bf16 and int8 need CPU
features some hosts lack), so the embedder times its candidates where it runs:
each candidate first computes the calibration photos, and is kept only when its answers
match the fp32 graph's (lowest cosine >= MIN_COSINE, cell by cell for the local graph);
the kept ones are timed for a few seconds each, and the fastest serves. The choice and
every measurement are cached next to the export (runtime-choice.json), keyed by what
the speed depends on (CPU, cores, threads, device, runtime versions, the graphs), so
a restart or another replica on the same kind of host reuses it.

EMBED_RUNTIME: "auto" (every runtime installed), "openvino" (its precisions only), or
"onnxruntime" (the export's own graph as exported, no timing)."""

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from photosearch.common.errors import FailedPrecondition
from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder import calibration
from photosearch_embedder.engines import (
    ONNXRUNTIME,
    OPENVINO,
    Engine,
    open_session,
    package_versions,
)
from photosearch_embedder.preprocess import INPUT_NAME, OUTPUT_NAME, PreprocessSpec
from photosearch_embedder.resolve import has_local, onnx_name

log = get_logger(__name__)
RuntimeSetting = Literal["auto", "onnxruntime", "openvino"]
# A candidate serves only if its fingerprints stay this close to fp32's (int8 measured
# 0.9988 for onnxruntime, 0.9992 for OpenVINO+NNCF on DINOv2-small; docs/models.md).
MIN_COSINE = 0.998
CHOICE_FILE = "runtime-choice.json"
FINGERPRINT, LOCAL = "fingerprint", "local"
FP32 = onnx_name("none")
# The calibration photos are checked (and OpenVINO's int8 calibrated) in these views too.
VIEWS = ("mirror", "crop:0.6")


class RuntimeUnavailable(FailedPrecondition):
    """EMBED_RUNTIME names a runtime that cannot run here; the message says why."""


@dataclass(frozen=True)
class Trial:
    """One candidate engine on one graph: its speed (items per second; 0 = not timed),
    its lowest cosine to fp32 (None = not run), or why it cannot serve."""

    engine: Engine
    rate: float = 0.0
    min_cosine: float | None = None
    problem: str = ""


@dataclass(frozen=True)
class GraphChoice:
    engine: Engine
    trials: tuple[Trial, ...] = ()

    @property
    def rate(self) -> float:
        return next((t.rate for t in self.trials if t.engine == self.engine), 0.0)


@dataclass(frozen=True)
class RuntimeChoice:
    fingerprint: GraphChoice
    local: GraphChoice | None = None
    setting: str = "onnxruntime"
    host: str = ""
    measured_at: str = ""
    cached: bool = False  # read from runtime-choice.json rather than measured now
    # Where this choice and OpenVINO's int8 graphs are kept ("" = beside the export).
    cache_dir: str = ""

    @property
    def cache(self) -> Path | None:
        return Path(self.cache_dir) if self.cache_dir else None

    def summary(self) -> str:
        """One line for people: the engines, their rates, what else was tried."""
        parts = []
        for graph, choice in ((FINGERPRINT, self.fingerprint), (LOCAL, self.local)):
            if choice is None:
                continue
            line = f"{graph}: {choice.engine.name}"
            if choice.rate:
                line += f" {choice.rate:.1f}/s"
            others = [_trial_text(t) for t in choice.trials if t.engine != choice.engine]
            if others:
                line += f" (also tried: {', '.join(others)})"
            parts.append(line)
        return "; ".join(parts) + (" [cached]" if self.cached else "")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("cached", "cache_dir")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RuntimeChoice":
        def graph(value: dict[str, Any] | None) -> GraphChoice | None:
            if value is None:
                return None
            trials = tuple(
                Trial(Engine(**t["engine"]), t["rate"], t["min_cosine"], t["problem"])
                for t in value["trials"]
            )
            return GraphChoice(Engine(**value["engine"]), trials)

        fingerprint = graph(data["fingerprint"])
        assert fingerprint is not None
        return cls(
            fingerprint,
            graph(data["local"]),
            data["setting"],
            data["host"],
            data["measured_at"],
            cached=True,
        )


def _trial_text(trial: Trial) -> str:
    if trial.problem:
        return f"{trial.engine.name}: {trial.problem}"
    return f"{trial.engine.name} {trial.rate:.1f}/s"


def as_exported(files: ModelFiles) -> RuntimeChoice:
    """The export's graphs in onnxruntime, as exported: no timing."""
    fingerprint = Engine(ONNXRUNTIME, _precision(files.onnx), files.onnx)
    local = (
        GraphChoice(Engine(ONNXRUNTIME, "fp32", _local_graph(files))) if has_local(files) else None
    )
    return RuntimeChoice(GraphChoice(fingerprint), local)


def _precision(graph: str) -> str:
    return "int8" if graph == onnx_name("int8") else "fp32"


def _local_graph(files: ModelFiles) -> str:
    preprocess = PreprocessSpec.from_json(files.preprocess())
    assert preprocess.local is not None
    return preprocess.local.onnx


def reference_graph(files: ModelFiles) -> str:
    """The fp32 fingerprint graph when the export kept it, else the graph it serves
    (exports made before fp32 was kept beside int8)."""
    return FP32 if FP32 in files.files else files.onnx


def candidates(files: ModelFiles, setting: RuntimeSetting, device: str, graph: str) -> list[Engine]:
    """The engines worth timing for one graph ("fingerprint" or "local")."""
    if graph == FINGERPRINT:
        served, reference = files.onnx, reference_graph(files)
    else:
        served = reference = _local_graph(files)
    engines = []
    if setting == "auto" or device != "cpu":
        engines += [
            Engine(ONNXRUNTIME, _precision(g), g) for g in dict.fromkeys([served, reference])
        ]
    if device == "cpu" and setting in ("auto", OPENVINO) and _precision(reference) == "fp32":
        engines += [Engine(OPENVINO, p, reference) for p in ("fp32", "bf16", "int8")]
    return engines


def host_key(files: ModelFiles, setting: str, device: str, threads: int) -> dict[str, Any]:
    """What a measured speed depends on; a choice is reused only where all of it agrees."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "machine": platform.machine(),
        "device": device,
        "threads": threads,
        "setting": setting,
        "packages": package_versions(),
        "graphs": hashlib.sha256(json.dumps(files.files, sort_keys=True).encode()).hexdigest()[:16],
    }


@cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ChoiceRequest:
    """EMBED_RUNTIME and what timing a candidate needs."""

    setting: RuntimeSetting = "auto"
    device: str = "cpu"
    threads: int = 0
    batch_size: int = 16
    probe_seconds: float = 2.0
    # Where choices and OpenVINO's int8 graphs are kept, one folder per model (None: in
    # the export's own directory).
    cache_dir: Path | None = None

    def folder(self, files: ModelFiles) -> Path:
        if self.cache_dir is None:
            return files.directory
        return ModelFiles.directory_for(self.cache_dir, files.model_id)


def choose(
    files: ModelFiles,
    request: ChoiceRequest,
    *,
    engines: Callable[[str], list[Engine]] | None = None,
) -> RuntimeChoice:
    """The engines this host serves `files` with: cached, or measured now and cached.
    `engines(graph)` overrides the candidate list (tests)."""
    if request.setting == ONNXRUNTIME and engines is None:
        return as_exported(files)
    key = host_key(files, request.setting, request.device, request.threads)
    digest = _key_digest(key)
    folder = request.folder(files)
    if cached := _read_cached(folder, digest):
        log.info("runtime.cached", model_id=files.model_id, choice=cached.summary())
        return replace(cached, cache_dir=str(folder))
    listing = engines or (lambda graph: candidates(files, request.setting, request.device, graph))
    choice = RuntimeChoice(
        _choose_graph(files, request, FINGERPRINT, listing(FINGERPRINT)),
        _choose_graph(files, request, LOCAL, listing(LOCAL)) if has_local(files) else None,
        request.setting,
        digest,
        datetime.now(UTC).isoformat(timespec="seconds"),
        cache_dir=str(folder),
    )
    log.info("runtime.chosen", model_id=files.model_id, choice=choice.summary(), host=key)
    _write_cached(folder, digest, key, choice)
    return choice


def _choose_graph(
    files: ModelFiles, request: ChoiceRequest, graph: str, engines: list[Engine]
) -> GraphChoice:
    preprocess = PreprocessSpec.from_json(files.preprocess())
    if graph == FINGERPRINT:
        pixels = calibration.fingerprint_inputs(preprocess, VIEWS)
        inputs, io = [pixels], (INPUT_NAME, OUTPUT_NAME)
        reference = Engine(ONNXRUNTIME, _precision(reference_graph(files)), reference_graph(files))
        timed = np.concatenate([pixels] * (request.batch_size // len(pixels) + 1))
        timed_inputs, per_call = [timed[: request.batch_size]], request.batch_size
    else:
        assert preprocess.local is not None
        inputs = calibration.local_inputs(preprocess)
        io = (preprocess.local.input_name, preprocess.local.output_name)
        reference = Engine(ONNXRUNTIME, "fp32", preprocess.local.onnx)
        timed_inputs, per_call = inputs, 1
    if not engines:
        raise RuntimeUnavailable(
            f"EMBED_RUNTIME={request.setting} has no engine for the {graph} graph of "
            f"{files.model_id} on {request.device}"
        )

    def calibration_set() -> list[np.ndarray]:
        return [row[None] for row in inputs[0]] if graph == FINGERPRINT else inputs

    def session(engine: Engine) -> Any:
        return open_session(
            engine,
            files.directory,
            device=request.device,
            threads=request.threads,
            io=io,
            calibration=calibration_set,
            cache=request.folder(files),
        )

    opened = session(reference)
    try:
        expected = _outputs(opened, inputs)
    finally:
        opened.close()
    trials = [
        _trial(e, session, inputs, expected, timed_inputs, per_call, request) for e in engines
    ]
    for trial in trials:
        if trial.problem:
            event = "runtime.skipped" if trial.min_cosine is None else "runtime.rejected"
            log.warning(
                event,
                graph=graph,
                engine=trial.engine.name,
                file=trial.engine.graph,
                reason=trial.problem,
            )
    good = [t for t in trials if not t.problem]
    if not good:
        raise RuntimeUnavailable(
            f"no engine can run the {graph} graph of {files.model_id} here: "
            + "; ".join(_trial_text(t) for t in trials)
        )
    best = max(good, key=lambda t: t.rate)
    return GraphChoice(best.engine, tuple(trials))


def _trial(
    engine: Engine,
    session: Callable[[Engine], Any],
    inputs: list[np.ndarray],
    expected: list[np.ndarray],
    timed_inputs: list[np.ndarray],
    per_call: int,
    request: ChoiceRequest,
) -> Trial:
    if missing := engine.missing():
        return Trial(engine, problem=not_installed(missing))
    try:
        opened = session(engine)
    except Exception as exc:  # a runtime that cannot load this graph is one fewer choice
        return Trial(engine, problem=f"could not load the graph: {_short(exc)}")
    try:
        got = _outputs(opened, inputs)
        lowest = min(_min_cosine(g, e) for g, e in zip(got, expected, strict=True))
        if not lowest >= MIN_COSINE:  # also refuses NaN
            return Trial(
                engine,
                min_cosine=round(lowest, 6),
                problem=f"drifts from fp32 (lowest cosine {lowest:.5f} < {MIN_COSINE})",
            )
        return Trial(
            engine, _rate(opened, timed_inputs, per_call, request.probe_seconds), round(lowest, 6)
        )
    except Exception as exc:
        return Trial(engine, problem=f"failed on the calibration photos: {_short(exc)}")
    finally:
        opened.close()


def not_installed(packages: list[str]) -> str:
    if len(packages) == 1:
        return f"the Python package {packages[0]} is not installed"
    return f"the Python packages {' and '.join(packages)} are not installed"


def _outputs(session: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(session.run(x), dtype=np.float32) for x in inputs]


def _min_cosine(got: np.ndarray, expected: np.ndarray) -> float:
    """Lowest cosine between matching unit vectors: rows of a fingerprint batch, or the
    cells of a local feature map (1, dim, rows, cols)."""
    if got.shape != expected.shape:
        return float("nan")
    if got.ndim == 4:
        got, expected = (a[0].reshape(a.shape[1], -1).T for a in (got, expected))
    return calibration.min_cosine(got, expected)


def _rate(session: Any, inputs: list[np.ndarray], per_call: int, seconds: float) -> float:
    """Items per second over about `seconds` (after one warm-up round)."""
    for x in inputs:
        session.run(x)
    done, started = 0, time.perf_counter()
    while True:
        for x in inputs:
            session.run(x)
            done += per_call
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return round(done / elapsed, 2)


def _short(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _read_cached(directory: Path, digest: str) -> RuntimeChoice | None:
    try:
        entry = json.loads((directory / CHOICE_FILE).read_text()).get(digest)
        return RuntimeChoice.from_json(entry["choice"]) if entry else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("runtime.cache_unreadable", path=str(directory / CHOICE_FILE), error=str(exc))
        return None


def _write_cached(directory: Path, digest: str, key: dict[str, Any], choice: RuntimeChoice) -> None:
    """Add this host's choice to runtime-choice.json (other hosts' entries stay); a
    read-only cache volume only costs the next start a new measurement."""
    path = directory / CHOICE_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            document = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            document = {}
        document[digest] = {"host": key, "choice": choice.to_json()}
        tmp = path.with_name(f".{CHOICE_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(document, indent=2))
        tmp.replace(path)
    except OSError as exc:
        log.warning("runtime.cache_not_written", path=str(path), error=str(exc))
