"""Which engine runs each graph of a model on this host, decided by measurement.

Which runtime is fastest differs between hosts of the same kind (onnxruntime's int8
kernels ran 2.3x slower on one than on another; OpenVINO's bf16 and int8 need CPU
features some hosts lack), so the embedder times its candidates where it runs:
each candidate first computes the calibration photos, and is kept only when its answers
match the fp32 graph's (lowest cosine >= MIN_COSINE, cell by cell for the local graph;
runtime_trials.py); the kept ones are timed for a few seconds each, and the fastest
serves. The choice and every measurement are cached next to the export
(runtime-choice.json, runtime_cache.py), keyed by what the speed depends on, so a
restart or another replica on the same kind of host reuses it, after checking the
chosen engines against fp32 once more.

EMBED_RUNTIME: "auto" (every runtime installed: onnxruntime, OpenVINO, PyTorch bf16),
"openvino" or "torch" (that runtime's precisions only), or "onnxruntime" (the export's
own graph as exported, no timing)."""

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from photosearch.common.errors import FailedPrecondition
from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder import runtime_cache
from photosearch_embedder.engines import ONNXRUNTIME, OPENVINO, TORCH, Engine
from photosearch_embedder.preprocess import PreprocessSpec
from photosearch_embedder.resolve import has_local, onnx_name
from photosearch_embedder.runtime_trials import FINGERPRINT, LOCAL, RULE, GraphBench, Trial

log = get_logger(__name__)
RuntimeSetting = Literal["auto", "onnxruntime", "openvino", "torch"]
FP32 = onnx_name("none")


class RuntimeUnavailable(FailedPrecondition):
    """EMBED_RUNTIME names a runtime that cannot run here; the message says why."""


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

    def graphs(self) -> list[tuple[str, GraphChoice]]:
        """(graph name, its choice): the fingerprint graph, then the local one if any."""
        local = [(LOCAL, self.local)] if self.local is not None else []
        return [(FINGERPRINT, self.fingerprint), *local]

    def summary(self) -> str:
        """One line for people: the engines, their rates, what else was tried."""
        parts = []
        for graph, choice in self.graphs():
            line = f"{graph}: {choice.engine.name}"
            if choice.rate:
                line += f" {choice.rate:.1f}/s"
            others = [t.text() for t in choice.trials if t.engine != choice.engine]
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
            trials = tuple(Trial.from_json(t) for t in value["trials"])
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
    if setting == "auto" or (device != "cpu" and setting == ONNXRUNTIME):
        engines += [
            Engine(ONNXRUNTIME, _precision(g), g) for g in dict.fromkeys([served, reference])
        ]
    if device == "cpu" and setting in ("auto", OPENVINO) and _precision(reference) == "fp32":
        engines += [Engine(OPENVINO, p, reference) for p in ("fp32", "bf16", "int8")]
    if setting in ("auto", TORCH) and _precision(reference) == "fp32":
        # PyTorch fp32 never beat onnxruntime's fp32 here: auto times bf16 only.
        precisions = ("bf16",) if setting == "auto" else ("fp32", "bf16")
        engines += [Engine(TORCH, p, reference) for p in precisions]
    return engines


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
    """The engines this host serves `files` with: cached (and checked again against fp32,
    which also makes anything the engines need that has gone missing), or measured now and
    cached. `engines(graph)` overrides the candidate list (tests)."""
    if request.setting == ONNXRUNTIME and engines is None:
        return as_exported(files)
    key = runtime_cache.host_key(
        files,
        setting=request.setting,
        device=request.device,
        threads=request.threads,
        batch_size=request.batch_size,
        rule=RULE,
    )
    digest = runtime_cache.digest(key)
    folder = request.folder(files)
    benches: dict[str, GraphBench] = {}

    def bench(graph: str) -> GraphBench:
        if graph not in benches:
            benches[graph] = GraphBench(
                files,
                graph,
                _reference(files, graph),
                device=request.device,
                threads=request.threads,
                batch_size=request.batch_size,
                cache=folder,
            )
        return benches[graph]

    if entry := runtime_cache.read(folder, digest):
        cached = _from_cache(entry["choice"], folder)
        if cached is not None:
            if problem := _recheck(cached, bench):
                log.warning("runtime.cache_stale", model_id=files.model_id, reason=problem)
            else:
                log.info("runtime.cached", model_id=files.model_id, choice=cached.summary())
                return cached
    listing = engines or (lambda graph: candidates(files, request.setting, request.device, graph))
    choice = RuntimeChoice(
        _choose_graph(files, request, bench(FINGERPRINT), listing(FINGERPRINT)),
        _choose_graph(files, request, bench(LOCAL), listing(LOCAL)) if has_local(files) else None,
        request.setting,
        digest,
        datetime.now(UTC).isoformat(timespec="seconds"),
        cache_dir=str(folder),
    )
    log.info("runtime.chosen", model_id=files.model_id, choice=choice.summary(), host=key)
    runtime_cache.write(folder, digest, {"host": key, "choice": choice.to_json()})
    return choice


def _reference(files: ModelFiles, graph: str) -> Engine:
    """The fp32 graph in onnxruntime: what every candidate must agree with."""
    name = reference_graph(files) if graph == FINGERPRINT else _local_graph(files)
    return Engine(ONNXRUNTIME, _precision(name), name)


def _from_cache(data: dict[str, Any], folder: Path) -> "RuntimeChoice | None":
    try:
        return replace(RuntimeChoice.from_json(data), cache_dir=str(folder))
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("runtime.cache_unreadable", folder=str(folder), error=str(exc))
        return None


def _recheck(choice: "RuntimeChoice", bench: Callable[[str], GraphBench]) -> str:
    """Why a cached choice may not serve as it is ("" = it may): each chosen engine must
    still load and answer as fp32 does (its int8 graph may have been removed, say)."""
    for graph, chosen in choice.graphs():
        trial = bench(graph).check(chosen.engine)
        if trial.problem:
            return f"{graph}: {trial.text()}"
    return ""


def _choose_graph(
    files: ModelFiles, request: ChoiceRequest, bench: GraphBench, engines: list[Engine]
) -> GraphChoice:
    graph = bench.graph
    if not engines:
        raise RuntimeUnavailable(
            f"EMBED_RUNTIME={request.setting} has no engine for the {graph} graph of "
            f"{files.model_id} on {request.device}"
        )
    trials = [bench.trial(e, request.probe_seconds) for e in engines]
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
            + "; ".join(t.text() for t in trials)
        )
    best = max(good, key=lambda t: t.rate)
    return GraphChoice(best.engine, tuple(trials))
