"""One graph's trials: does a candidate engine answer what the fp32 graph answers, and
how fast is it here.

The yardstick is the calibration photos (calibration.py). OpenVINO's int8 is calibrated
on part of them (the upright and mirrored views of the fingerprint graph, the upright
photos of the local graph) and checked on all of them, so the check also sees inputs the
calibration never saw (the centre crops, the turned photos)."""

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photosearch.common.model_files import ModelFiles
from photosearch_embedder import calibration
from photosearch_embedder.engines import ONNXRUNTIME, TORCH, Engine, Session, open_session
from photosearch_embedder.preprocess import INPUT_NAME, OUTPUT_NAME, PreprocessSpec

# A candidate serves only if its answers stay this close to fp32's (int8 measured 0.9990
# for onnxruntime, 0.9993 for OpenVINO+NNCF on DINOv2-small; docs/models.md). Changing
# it, or the views below, is a new RULE: cached choices made under another are re-made.
MIN_COSINE = 0.998
CHECK_VIEWS = ("mirror", "crop:0.6")
CALIBRATION_VIEWS = ("mirror",)
CALIBRATION_TURNS = (0,)
CHECK_TURNS = (0, 90)
RULE = f"min-cosine {MIN_COSINE}; views {CHECK_VIEWS}; turns {CHECK_TURNS}; calibration 1"
FINGERPRINT, LOCAL = "fingerprint", "local"
# PyTorch candidates are tried in a child process (torch_trial.py): the import, the
# model's weights and the timing take well under this on a 2-core host.
TRIAL_MODULE = "photosearch_embedder.torch_trial"
TRIAL_TIMEOUT = 600


@dataclass(frozen=True)
class Trial:
    """One candidate engine on one graph: its speed (items per second; 0 = not timed),
    its lowest cosine to fp32 (None = not run), or why it cannot serve."""

    engine: Engine
    rate: float = 0.0
    min_cosine: float | None = None
    problem: str = ""

    def text(self) -> str:
        if self.problem:
            return f"{self.engine.name}: {self.problem}"
        return f"{self.engine.name} {self.rate:.1f}/s"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Trial":
        """The trial `dataclasses.asdict` wrote (runtime-choice.json, torch_trial.py)."""
        return cls(Engine(**data["engine"]), data["rate"], data["min_cosine"], data["problem"])


def calibration_inputs(preprocess: PreprocessSpec, graph: str) -> list[np.ndarray]:
    """What OpenVINO's int8 of `graph` is calibrated on, one input per item."""
    if graph == FINGERPRINT:
        rows = calibration.fingerprint_inputs(preprocess, CALIBRATION_VIEWS)
        return [row[None] for row in rows]
    return calibration.local_inputs(preprocess, CALIBRATION_TURNS)


def not_installed(packages: list[str]) -> str:
    if len(packages) == 1:
        return f"the Python package {packages[0]} is not installed"
    return f"the Python packages {' and '.join(packages)} are not installed"


class GraphBench:
    """The inputs, the fp32 answers and the sessions for trying engines on one graph."""

    def __init__(
        self,
        files: ModelFiles,
        graph: str,
        reference: Engine,
        *,
        device: str,
        threads: int,
        batch_size: int,
        cache: Any,
        child: bool = False,
    ) -> None:
        """`child`: this process is torch_trial.py's, so torch engines run here."""
        self.files, self.graph, self.reference = files, graph, reference
        self.batch_size, self.child = batch_size, child
        self.preprocess = PreprocessSpec.from_json(files.preprocess())
        self.device, self.threads, self.cache = device, threads, cache
        if graph == FINGERPRINT:
            pixels = calibration.fingerprint_inputs(self.preprocess, CHECK_VIEWS)
            self.inputs = [pixels]
            self.io = (INPUT_NAME, OUTPUT_NAME)
            repeated = np.concatenate([pixels] * (batch_size // len(pixels) + 1))
            self.timed, self.per_call = [repeated[:batch_size]], batch_size
        else:
            local = self.preprocess.local
            assert local is not None
            self.inputs = calibration.local_inputs(self.preprocess, CHECK_TURNS)
            self.io = (local.input_name, local.output_name)
            self.timed, self.per_call = self.inputs, 1
        assert reference.runtime == ONNXRUNTIME
        opened = self.session(reference)
        try:
            self.expected = _outputs(opened, self.inputs)
        finally:
            opened.close()

    def session(self, engine: Engine) -> Session:
        return open_session(
            engine,
            self.files,
            device=self.device,
            threads=self.threads,
            io=self.io,
            calibration=lambda: calibration_inputs(self.preprocess, self.graph),
            cache=self.cache,
        )

    def trial(self, engine: Engine, seconds: float) -> Trial:
        """Checked against fp32, then (if it matches) timed for about `seconds`."""
        return self._run(engine, seconds)

    def check(self, engine: Engine) -> Trial:
        """Checked against fp32 only (a cached choice before it serves again)."""
        return self._run(engine, 0.0)

    def _run(self, engine: Engine, seconds: float) -> Trial:
        if missing := engine.missing():
            return Trial(engine, problem=not_installed(missing))
        if engine.runtime == TORCH and not self.child:
            return self._run_in_child(engine, seconds)
        try:
            opened = self.session(engine)
        except Exception as exc:  # a runtime that cannot load this graph is one fewer choice
            return Trial(engine, problem=f"could not load the graph: {_short(exc)}")
        try:
            got = _outputs(opened, self.inputs)
            lowest = min(_min_cosine(g, e) for g, e in zip(got, self.expected, strict=True))
            if not lowest >= MIN_COSINE:  # also refuses NaN
                return Trial(
                    engine,
                    min_cosine=round(lowest, 6),
                    problem=f"drifts from fp32 (lowest cosine {lowest:.5f} < {MIN_COSINE})",
                )
            rate = _rate(opened, self.timed, self.per_call, seconds) if seconds else 0.0
            return Trial(engine, rate, round(lowest, 6))
        except Exception as exc:
            return Trial(engine, problem=f"failed on the calibration photos: {_short(exc)}")
        finally:
            opened.close()

    def _run_in_child(self, engine: Engine, seconds: float) -> Trial:
        request = {
            "export": str(self.files.directory),
            "graph": self.graph,
            "reference": asdict(self.reference),
            "engine": asdict(engine),
            "device": self.device,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "cache": str(self.cache) if self.cache else "",
            "seconds": seconds,
        }
        with tempfile.TemporaryDirectory(prefix="torch-trial-") as folder:
            asked, answer = Path(folder) / "request.json", Path(folder) / "trial.json"
            asked.write_text(json.dumps(request))
            command = [sys.executable, "-m", TRIAL_MODULE, str(asked), str(answer)]
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=TRIAL_TIMEOUT + seconds
                )
            except subprocess.TimeoutExpired:
                return Trial(engine, problem=f"its trial took over {TRIAL_TIMEOUT + seconds:.0f} s")
            if done.returncode != 0 or not answer.is_file():
                tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
                return Trial(engine, problem=f"its trial failed (exit {done.returncode}): {tail}")
            return Trial.from_json(json.loads(answer.read_text()))


def _outputs(session: Session, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(session.run(x), dtype=np.float32) for x in inputs]


def _min_cosine(got: np.ndarray, expected: np.ndarray) -> float:
    """Lowest cosine between matching unit vectors: rows of a fingerprint batch, or the
    cells of a local feature map (1, dim, rows, cols)."""
    if got.shape != expected.shape:
        return float("nan")
    if got.ndim == 4:
        got, expected = (a[0].reshape(a.shape[1], -1).T for a in (got, expected))
    return calibration.min_cosine(got, expected)


def _rate(session: Session, inputs: list[np.ndarray], per_call: int, seconds: float) -> float:
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
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
