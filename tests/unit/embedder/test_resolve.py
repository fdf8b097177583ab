"""Which model a worker runs: auto prefers DINOv2-small, falls back to the offline
EfficientNet-Lite0 and says why; a missing explicit model says how to provide it."""

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from photosearch.common.errors import InvalidArgument
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.models import ModelUnavailable, spec_for
from photosearch_embedder.resolve import resolve


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty Hugging Face cache


def publish_as(files: ModelFiles, cache: Path, model_id: str) -> ModelFiles:
    """Place an export in `cache` under another model id (same graph, for resolution)."""
    directory = ModelFiles.directory_for(cache, model_id)
    directory.mkdir(parents=True)
    for name in files.files:
        (directory / name).write_bytes((files.directory / name).read_bytes())
    placed = ModelFiles(directory, model_id, files.dim, files.onnx, files.files)
    placed.write_manifest()
    return placed


def test_auto_falls_back_to_the_colour_fused_efficientnet_and_says_why(tmp_path: Path) -> None:
    resolution = resolve("auto", tmp_path / "cache")
    assert resolution.model_id == "efficientnet-lite0-colour@1"
    assert resolution.files is None and resolution.spec is not None  # to be exported
    assert "DINOv2-small is not available" in resolution.note
    assert "HF_HUB_OFFLINE" in resolution.note
    assert "python -m photosearch_embedder.export --model facebook/dinov2-small" in resolution.note


def test_auto_takes_dinov2_small_when_its_export_is_there(
    tiny_model: ModelFiles, tmp_path: Path
) -> None:
    placed = publish_as(tiny_model, tmp_path, "facebook/dinov2-small@1")
    resolution = resolve("auto", tmp_path)
    assert resolution.model_id == "facebook/dinov2-small@1"
    assert resolution.files == placed and resolution.note == ""


def test_a_damaged_export_is_not_used(tiny_model: ModelFiles, tmp_path: Path) -> None:
    placed = publish_as(tiny_model, tmp_path, "facebook/dinov2-small@1")
    (placed.directory / "preprocess.json").write_text("{}")
    assert resolve("auto", tmp_path).model_id == "efficientnet-lite0-colour@1"


def test_a_missing_explicit_model_says_how_to_provide_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as error:
        resolve("facebook/dinov2-base", tmp_path)
    message = str(error.value)
    assert "facebook/dinov2-base@1 is not available" in message
    assert "EMBED_MODEL_CACHE_DIR" in message and "EMBED_MODEL to a local directory" in message


def test_model_names_and_directories(tiny_checkpoint: Path, tiny_model: ModelFiles) -> None:
    assert spec_for("efficientnet-lite0").model_id == "efficientnet-lite0@1"
    assert spec_for("facebook/dinov2-with-registers-small@1").family == "dinov2"
    assert spec_for(str(tiny_checkpoint)).model_id == "local/tiny-dinov2@1"
    assert spec_for(str(tiny_checkpoint), "facebook/dinov2-small").model_id == (
        "facebook/dinov2-small@1"
    )
    exported = resolve(str(tiny_model.directory), Path("unused"))
    assert exported.files == tiny_model and exported.spec is None
    with pytest.raises(InvalidArgument, match="unknown model"):
        spec_for("resnet50")
    with pytest.raises(InvalidArgument, match="recipe 2"):
        spec_for("facebook/dinov2-small@2")


def test_a_hub_that_never_answers_is_given_up_on(tmp_path: Path) -> None:
    """The hub is a local socket that accepts connections and never replies."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def hold() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=hold, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{listener.getsockname()[1]}", HF_HOME=str(tmp_path))
    code = (
        "import json, pathlib; from photosearch_embedder.resolve import resolve; "
        f"r = resolve('auto', pathlib.Path({str(tmp_path / 'cache')!r}), probe_seconds=1.0); "
        "print(json.dumps({'model_id': r.model_id, 'note': r.note}))"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        listener.close()
        for conn in held:
            conn.close()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["model_id"] == "efficientnet-lite0-colour@1"
    assert "the model hub did not answer within 1 s" in result["note"]
    assert held, "the probe never reached the (local) hub"
