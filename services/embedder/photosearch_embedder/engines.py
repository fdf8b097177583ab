"""The runtimes an exported ONNX graph can run in, behind one small interface: a
session takes the graph's one input array and returns its one output array.

onnxruntime runs the files as exported (fp32, or the export's dynamic int8); OpenVINO
reads the fp32 graph and runs it in fp32 or bfloat16, or in its own static int8 made by
NNCF post-training quantisation on the calibration photos (cached next to the export,
made once per graph). Which engine serves is decided by measurement (runtime_choice.py).
Blocking calls only; the model manager runs them on its inference thread."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles, sha256_file
from photosearch_embedder.file_lock import file_lock

log = get_logger(__name__)
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
ONNXRUNTIME, OPENVINO, TORCH = "onnxruntime", "openvino", "torch"
# Python packages each runtime (and OpenVINO's own int8) needs.
PACKAGES = {ONNXRUNTIME: "onnxruntime", OPENVINO: "openvino", "nncf": "nncf", TORCH: "torch"}
OPENVINO_INT8_DIR = "openvino-int8"
QUANTIZE_MODULE = "photosearch_embedder.quantize"
QUANTIZE_TIMEOUT_SECONDS = 900
# CPU flags of 8-bit dot-product instructions that accumulate without saturating.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
NNCF_DEFAULT_OVERFLOW_FIX = "first_layer_only"  # its int8 graphs' folders carry no suffix
# int8 graphs made in a temporary folder where the cache is read-only, per process.
_scratch: dict[str, Path] = {}


@dataclass(frozen=True)
class Engine:
    """One way to run one graph: a runtime, a precision, the export's file it reads (for
    PyTorch, the ONNX file whose computation it rebuilds from the export's weights)."""

    runtime: str
    precision: str  # "fp32", "int8" or "bf16"
    graph: str

    @property
    def name(self) -> str:
        return f"{self.runtime} {self.precision}"

    def needs(self) -> list[str]:
        """The Python packages this engine needs."""
        wanted = [PACKAGES[self.runtime]]
        if self.runtime == OPENVINO and self.precision == "int8":
            wanted.append(PACKAGES["nncf"])
        return wanted

    def missing(self) -> list[str]:
        return [p for p in self.needs() if importlib.util.find_spec(p) is None]


class Session(Protocol):
    def run(self, inputs: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


def package_versions() -> dict[str, str]:
    """Versions of the runtime packages installed here ("" = not installed)."""
    versions = {}
    for package in sorted(set(PACKAGES.values())):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = ""
    return versions


class OnnxruntimeSession:
    def __init__(self, path: Path, device: str, threads: int, io: tuple[str, str]) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        # Idle onnxruntime threads would spin on the cores the decode threads need
        # (measured: no faster alone, much slower beside other work).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [CUDA, CPU] if device == "cuda" else [CPU]
        self.session: Any = ort.InferenceSession(str(path), options, providers=providers)
        self.input, self.output = io

    def run(self, inputs: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run([self.output], {self.input: inputs})[0]
        return out

    def close(self) -> None:
        self.session = None


class OpenvinoSession:
    def __init__(self, path: Path, precision: str, threads: int, output: str) -> None:
        import openvino as ov

        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            # int8 graphs carry their own precision; bf16 only where the CPU has it
            # (OpenVINO falls back to fp32 elsewhere, and the timing shows it).
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        self.compiled: Any = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.request: Any = self.compiled.create_infer_request()
        self.output = self.compiled.output(output)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: inputs})
        return np.array(result[self.output], dtype=np.float32)

    def close(self) -> None:
        self.request = self.compiled = None


def openvino_int8(
    directory: Path, graph: str, calibration: list[np.ndarray], cache: Path | None = None
) -> Path:
    """OpenVINO's static int8 of `directory`/`graph` (NNCF post-training quantisation on
    the calibration inputs), made once and kept in `cache` (default: `directory`) under
    openvino-int8/, keyed by the graph's digest and the NNCF version; the path of its .xml.
    Where the cache cannot be written (a read-only volume) it is made in a temporary
    directory for this process."""
    overflow_fix = int8_overflow_fix()
    key = f"{sha256_file(directory / graph)[:16]}-nncf{metadata.version('nncf')}"
    if overflow_fix != NNCF_DEFAULT_OVERFLOW_FIX:
        key += f"-{overflow_fix}"
    folder = (cache or directory) / OPENVINO_INT8_DIR
    xml = folder / key / (Path(graph).stem + ".xml")
    if xml.is_file():
        return xml
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with file_lock(folder / ".lock"):
            if not xml.is_file():  # another replica may have made it meanwhile
                _quantize(directory / graph, calibration, folder, xml, overflow_fix)
        return xml
    except OSError as exc:
        if (made := _scratch.get(key)) and made.is_file():
            return made
        log.warning("engine.openvino_int8_not_cached", folder=str(folder), error=str(exc))
        scratch = Path(tempfile.mkdtemp(prefix="openvino-int8-"))
        xml = scratch / key / xml.name
        _quantize(directory / graph, calibration, scratch, xml, overflow_fix)
        _scratch[key] = xml
        return xml


def int8_overflow_fix(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """NNCF's OverflowFix for this CPU. Without VNNI (e.g. AVX2 only), OpenVINO's 8-bit
    kernels add products in saturating 16-bit lanes, so full-range int8 weights can
    overflow and drift (measured: lowest cosine 0.9974 on the tiny test model, rejected):
    there every layer's weights use half the range ("enable"). With VNNI only the first
    layer's do (NNCF's default)."""
    try:
        flags = {f for line in cpuinfo.read_text().splitlines() if line.startswith("flags")
                 for f in line.split(":", 1)[1].split()}  # fmt: skip
    except OSError:
        return NNCF_DEFAULT_OVERFLOW_FIX  # not Linux
    return NNCF_DEFAULT_OVERFLOW_FIX if flags & VNNI_FLAGS else "enable"


def _quantize(
    source: Path, calibration: list[np.ndarray], folder: Path, xml: Path, overflow_fix: str
) -> None:
    """Write the NNCF int8 of `source` as `xml`, in a child process (quantize.py), into a
    temporary sibling renamed last."""
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{xml.parent.name}."))
    try:
        np.savez(tmp / "calibration.npz", *calibration)
        command = [sys.executable, "-m", QUANTIZE_MODULE, str(source), str(tmp / xml.name)]
        done = subprocess.run(
            [*command, str(tmp / "calibration.npz"), overflow_fix],
            capture_output=True,
            text=True,
            timeout=QUANTIZE_TIMEOUT_SECONDS,
            env={**os.environ, "NNCF_CI": "1"},
        )
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
            raise RuntimeError(f"NNCF quantisation failed (exit {done.returncode}): {tail}")
        (tmp / "calibration.npz").unlink()
        (tmp / "source.json").write_text(json.dumps({"graph": source.name}))
        shutil.rmtree(xml.parent, ignore_errors=True)  # a half-made one from a crash
        tmp.replace(xml.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info(
        "engine.openvino_int8_made", graph=source.name, path=str(xml), overflow_fix=overflow_fix
    )


def import_nncf() -> Any:
    """nncf, with its usage reporting off. By default it sends usage events to Google
    Analytics from the first quantisation on; NNCF_CI set before the import replaces
    its reporter with a stub (nncf/telemetry/wrapper.py), so nothing leaves the host."""
    os.environ["NNCF_CI"] = "1"
    import nncf

    return nncf


def open_session(
    engine: Engine,
    files: ModelFiles,
    *,
    device: str,
    threads: int,
    io: tuple[str, str],
    calibration: Callable[[], list[np.ndarray]],
    cache: Path | None = None,
) -> Session:
    """A ready session of `engine` on the export `files`; `io` names the graph's input and
    output; `calibration` gives the inputs OpenVINO's int8 is calibrated on, `cache` where
    that int8 is kept (default: beside the export)."""
    if missing := engine.missing():
        raise RuntimeError(f"{engine.name} needs the Python package {', '.join(missing)}")
    if engine.runtime == TORCH:
        from photosearch_embedder.torch_engine import TorchSession

        return TorchSession(files, engine.graph, engine.precision, device, threads)
    directory = files.directory
    path = directory / engine.graph
    if engine.runtime == ONNXRUNTIME:
        return OnnxruntimeSession(path, device, threads, io)
    if device != "cpu":
        raise RuntimeError(f"{engine.name} runs on CPU here, not {device}")
    if engine.precision == "int8":
        path = openvino_int8(directory, engine.graph, calibration(), cache)
    return OpenvinoSession(path, engine.precision, threads, io[1])
