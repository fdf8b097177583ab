"""runtime-choice.json: the engines chosen on each kind of host, kept beside the export
(or under EMBED_RUNTIME_CACHE_DIR), one entry per host key.

A key holds everything a measured speed or the check depends on: the CPU (model, the
instruction sets OpenVINO's bf16 and int8 use), the cores this process may use (affinity
and the cgroup's CPU limit, not the node's count), threads, device, batch size, setting,
the runtime packages, the export's files and the rule of the check. Replicas sharing a
volume update the file one at a time under a lock; a file that cannot be read or
written costs the next start a new measurement, never the start itself."""

import hashlib
import json
import os
import platform
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.engines import package_versions
from photosearch_embedder.file_lock import file_lock

log = get_logger(__name__)
CHOICE_FILE = "runtime-choice.json"
# The CPU features the candidates' speed hinges on (bf16, int8 dot products, AMX).
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8")


def host_key(
    files: ModelFiles, *, setting: str, device: str, threads: int, batch_size: int, rule: str
) -> dict[str, Any]:
    model, flags = _cpu()
    return {
        "cpu": model,
        "cpu_flags": flags,
        "cpus": _usable_cpus(),
        "machine": platform.machine(),
        "device": device,
        "gpu": _gpu() if device == "cuda" else "",
        "threads": threads,
        "batch_size": batch_size,
        "setting": setting,
        "rule": rule,
        "packages": package_versions(),
        "graphs": hashlib.sha256(json.dumps(files.files, sort_keys=True).encode()).hexdigest()[:16],
    }


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@cache
def _cpu() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                model = value.strip()
            elif name.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return model, [f for f in CPU_FLAGS if f in flags]


def _usable_cpus() -> float:
    """CPUs this process may run on: its affinity, capped by the cgroup's CPU quota."""
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0)
    cpus = cpus or float(os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return round(cpus, 2)


@cache
def _gpu() -> str:
    """The GPU's name where nvidia-smi's library says it ("" where unknown)."""
    try:
        import ctypes

        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        handle = ctypes.c_void_p()
        name = ctypes.create_string_buffer(96)
        if nvml.nvmlInit_v2() or nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)):
            return ""
        if nvml.nvmlDeviceGetName(handle, name, len(name)):
            return ""
        return name.value.decode(errors="replace")
    except (OSError, AttributeError):
        return ""


def read(folder: Path, key_digest: str) -> dict[str, Any] | None:
    """This host's entry ({"host": key, "choice": ...}), or None."""
    path = folder / CHOICE_FILE
    try:
        document = json.loads(path.read_text())
        entry = document.get(key_digest) if isinstance(document, dict) else None
        return entry if isinstance(entry, dict) and isinstance(entry.get("choice"), dict) else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("runtime.cache_unreadable", path=str(path), error=str(exc))
        return None


def write(folder: Path, key_digest: str, entry: dict[str, Any]) -> None:
    """Add or replace this host's entry; other hosts' entries stay."""
    path = folder / CHOICE_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with file_lock(folder / f".{CHOICE_FILE}.lock"):
            try:
                document = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                document = {}
            if not isinstance(document, dict):
                document = {}
            document[key_digest] = entry
            handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{CHOICE_FILE}.")
            with os.fdopen(handle, "w") as out:
                json.dump(document, out, indent=2)
            os.replace(tmp, path)
    except OSError as exc:
        log.warning("runtime.cache_not_written", path=str(path), error=str(exc))
