"""The real export path on a tiny random DINOv2: ONNX equals transformers, files are
described by a manifest with hashes, and exporting again is a no-op."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from photosearch.common.model_files import ModelFiles, sha256_file
from photosearch_embedder import export
from photosearch_embedder.export import fingerprint_onnx
from photosearch_embedder.export.fingerprint_graph import reference_fingerprints
from photosearch_embedder.export.weights import load_dinov2
from photosearch_embedder.models import spec_for
from photosearch_embedder.preprocess import LocalSpec, PreprocessSpec
from photosearch_embedder.resolve import damaged_files, find_export, resolve
from photosearch_embedder.variants import parse_variants
from tests.support.embedder_models import TINY_NAME, cosine, photo, save_tiny_dinov2

pytestmark = pytest.mark.slow


def batch_of_photos(spec: PreprocessSpec) -> np.ndarray:
    names = ["chelsea", "astronaut", "coffee"]
    return np.concatenate([spec.tensors(photo(n), parse_variants([])) for n in names])


def cli(args: list[str]) -> int:
    """The export CLI as the init container runs it."""
    command = [sys.executable, "-m", "photosearch_embedder.export", *args]
    return subprocess.run(command, timeout=300, check=False).returncode


def run_onnx(files: ModelFiles, pixels: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(files.onnx_path), providers=["CPUExecutionProvider"])
    return session.run(["fingerprint"], {"pixel_values": pixels})[0]


def test_manifest_names_the_model_its_files_and_their_hashes(tiny_model: ModelFiles) -> None:
    manifest = json.loads((tiny_model.directory / "manifest.json").read_text())
    assert manifest["model_id"] == f"{TINY_NAME}@1"
    assert manifest["dim"] == 48
    assert manifest["onnx"] == "model_fp32.onnx"
    assert set(manifest["files"]) == {
        "model_fp32.onnx",
        "local.onnx",
        "preprocess.json",
        "export.json",
    }
    provenance = json.loads((tiny_model.directory / "export.json").read_text())
    assert provenance["quantization"] == "none" and provenance["opset"] == 18
    assert provenance["checks"]["fp32_vs_pytorch_min_cosine"] >= 0.9999
    for name, digest in manifest["files"].items():
        assert sha256_file(tiny_model.directory / name) == digest
    assert tiny_model.directory.name.startswith("test_tiny-dinov2_1-")
    session = ort.InferenceSession(str(tiny_model.onnx_path), providers=["CPUExecutionProvider"])
    (pixel_values,) = session.get_inputs()
    assert pixel_values.name == "pixel_values" and pixel_values.shape[1:] == [3, 224, 224]
    assert not isinstance(pixel_values.shape[0], int)  # dynamic batch


def test_onnx_fp32_equals_transformers(tiny_model: ModelFiles, tiny_checkpoint: Path) -> None:
    spec = PreprocessSpec.from_json(tiny_model.preprocess())
    pixels = batch_of_photos(spec)
    expected = reference_fingerprints(
        load_dinov2(str(tiny_checkpoint), eager_attention=False), torch.from_numpy(pixels)
    ).numpy()
    together = run_onnx(tiny_model, pixels)
    one_by_one = np.concatenate([run_onnx(tiny_model, pixels[i : i + 1]) for i in range(3)])
    assert np.all(cosine(together, expected) >= 0.9999)
    assert np.all(cosine(one_by_one, expected) >= 0.9999)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_exporting_again_is_a_no_op(tiny_model: ModelFiles, tiny_checkpoint: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in tiny_model.directory.iterdir()}
    code = cli(
        [
            "--model",
            str(tiny_checkpoint),
            "--model-name",
            TINY_NAME,
            "--cache-dir",
            str(tiny_model.directory.parent),
            "--quantize",
            "none",
        ]
    )
    assert code == 0
    assert {p.name: p.stat().st_mtime_ns for p in tiny_model.directory.iterdir()} == before


def test_a_damaged_export_is_redone_and_int8_stays_close_to_fp32(
    tiny_model: ModelFiles, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    copied = export.copy_export(tiny_model, tmp_path)
    copied.onnx_path.write_bytes(copied.onnx_path.read_bytes()[:-10])  # a half-copied file
    assert find_export(tmp_path, tiny_model.model_id) is None

    spec = spec_for(str(tiny_checkpoint), TINY_NAME)
    int8 = export.export_model(spec, tmp_path, "int8")
    assert find_export(tmp_path, spec.model_id) == int8
    # fp32 stays beside int8, listed in the manifest: the runtime choice's reference.
    assert int8.onnx == "model_int8.onnx" and "model_fp32.onnx" in int8.files
    pixels = batch_of_photos(PreprocessSpec.from_json(int8.preprocess()))
    assert np.all(cosine(run_onnx(int8, pixels), run_onnx(tiny_model, pixels)) >= 0.99)


def test_by_default_int8_is_kept_only_if_it_agrees_with_fp32_on_photos(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No int8 graph can be this faithful.
    monkeypatch.setattr(fingerprint_onnx, "INT8_MIN_COSINE", 1.01)
    spec = spec_for(str(tiny_checkpoint), TINY_NAME)
    assert spec.default_quantization == "int8"
    files = export.export_model(spec, tmp_path, "auto")
    assert files.onnx == "model_fp32.onnx" and not (files.directory / "model_int8.onnx").exists()
    checks = json.loads((files.directory / "export.json").read_text())["checks"]
    assert 0.99 <= checks["int8_vs_fp32_min_cosine"] < 1.01


def test_dinov2_with_registers_exports_too(embedder_models: Path, tmp_path: Path) -> None:
    checkpoint = save_tiny_dinov2(embedder_models / "tiny-registers", registers=True)
    spec = spec_for(str(checkpoint), "test/tiny-registers")
    files = export.export_model(spec, tmp_path, "none")
    pixels = batch_of_photos(spec.preprocess)
    expected = reference_fingerprints(load_dinov2(str(checkpoint)), torch.from_numpy(pixels))
    assert np.all(cosine(run_onnx(files, pixels), expected.numpy()) >= 0.9999)


def test_an_exported_directory_is_copied_into_another_cache(
    tiny_model: ModelFiles, tmp_path: Path
) -> None:
    assert cli(["--model", str(tiny_model.directory), "--cache-dir", str(tmp_path)]) == 0
    copied = find_export(tmp_path, tiny_model.model_id)
    assert copied is not None and copied.files == tiny_model.files


def without_local(files: ModelFiles, cache: Path) -> ModelFiles:
    """`files` as an embedder wrote them before local.onnx existed (no local file, no
    local section), placed in `cache`."""
    directory = ModelFiles.directory_for(cache, files.model_id)
    directory.mkdir(parents=True)
    for name in files.files:
        if name != "local.onnx":
            shutil.copyfile(files.directory / name, directory / name)
    document = json.loads((directory / "preprocess.json").read_text())
    del document["local"]
    (directory / "preprocess.json").write_text(json.dumps(document, indent=2))
    hashes = {n: sha256_file(directory / n) for n in files.files if n != "local.onnx"}
    older = ModelFiles(directory, files.model_id, files.dim, files.onnx, hashes)
    older.write_manifest()
    return older


def run_local(files: ModelFiles, pixels: np.ndarray) -> np.ndarray:
    path = files.directory / "local.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(["local"], {"pixel_values": pixels})[0]
    return out


def test_an_export_made_before_local_onnx_gets_it_added_and_keeps_its_graph(
    tiny_model: ModelFiles, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    older = without_local(tiny_model, tmp_path)
    assert damaged_files(older) == ["local.onnx"]
    assert find_export(tmp_path, older.model_id) is None
    assert find_export(tmp_path, older.model_id, need_local=False) == older
    resolution = resolve(str(tiny_checkpoint), tmp_path, model_name=TINY_NAME, quantize="none")
    assert resolution.files is None and "adding local.onnx" in resolution.note

    completed = export.export_model(spec_for(str(tiny_checkpoint), TINY_NAME), tmp_path, "none")
    assert find_export(tmp_path, older.model_id) == completed
    assert completed.directory == older.directory
    # The fingerprint graph is the one that was there: stored vectors stay valid.
    assert completed.files["model_fp32.onnx"] == older.files["model_fp32.onnx"]
    preprocess = PreprocessSpec.from_json(completed.preprocess())
    assert preprocess.local == LocalSpec(448, multiple=14, dim=48)
    info = json.loads((completed.directory / "export.json").read_text())
    assert info["local_added_at"] and info["checks"]["local_vs_pytorch_min_cosine"] >= 0.9999
    assert info["checks"]["fp32_vs_pytorch_min_cosine"] >= 0.9999  # the old checks stay
    # The same PCA as a fresh export: the same descriptors.
    pixels = preprocess.local_tensor(preprocess.decode(photo("coffee"), parse_variants([])))
    assert np.allclose(run_local(completed, pixels), run_local(tiny_model, pixels), atol=1e-5)


def test_an_export_without_local_onnx_still_serves_fingerprints_where_it_cannot_be_added(
    tiny_model: ModelFiles, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    older = without_local(tiny_model, tmp_path / "cache")
    in_place = resolve(str(older.directory), tmp_path / "elsewhere")
    assert in_place.files == older and "no local.onnx" in in_place.note
    no_weights = tmp_path / "checkpoint-without-weights"
    no_weights.mkdir()
    shutil.copyfile(tiny_checkpoint / "config.json", no_weights / "config.json")
    resolution = resolve(str(no_weights), tmp_path / "cache", model_name=TINY_NAME)
    assert resolution.files == older
    assert "has no local.onnx and it cannot be added here" in resolution.note
