"""The embedder pods' init container, run as rendered: it waits while the model-export Job
has not published the model's manifest, and lets the worker start once it has."""

import subprocess
import sys
from pathlib import Path

from photosearch.common.model_files import ModelFiles
from tests.unit.deploy.manifests import Render, config_maps_of, pod_spec


def _wait_for_model(render: Render) -> tuple[list[str], dict[str, str]]:
    embedder = render.get("Deployment", "embedder")
    (init,) = pod_spec(embedder)["initContainers"]
    assert init["name"] == "wait-for-model"
    return init["command"], config_maps_of(render.objects, embedder)


def test_workers_wait_for_the_export_then_start(renders: dict[str, Render], tmp_path: Path) -> None:
    command, env = _wait_for_model(renders["prod"])
    assert command[0] == "python"
    model = env["EMBED_MODEL"]
    environment = {"EMBED_MODEL": model, "EMBED_MODEL_CACHE_DIR": str(tmp_path)}
    run = [sys.executable, *command[1:]]

    waiting = subprocess.Popen(run, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert waiting.stdout is not None
        line = waiting.stdout.readline()  # it says what it waits for, then keeps waiting
        assert model in line and "model-export" in line
        assert waiting.poll() is None
    finally:
        waiting.kill()
        waiting.wait()

    directory = ModelFiles.directory_for(tmp_path, model)
    directory.mkdir(parents=True)
    ModelFiles(directory, model, 384, "model.onnx", {}).write_manifest()
    done = subprocess.run(run, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
