"""Where an exported model lives, shared by the embedder (which writes it) and
the gateway (which serves it to browsers), so both run the same files.

Layout: {cache_dir}/{model_key(model_id)}/
    manifest.json    {"model_id", "dim", "onnx": "<file>", "files": {name: sha256 hex}}
    preprocess.json  the preprocessing spec both sides apply (see the embedder)
    <onnx file>      the graph: pixel tensor in, L2-normalised fingerprint out
"""

import base64
import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photosearch.common.subjects import model_key

MANIFEST = "manifest.json"
PREPROCESS = "preprocess.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sri_sha256(hex_digest: str) -> str:
    """Subresource-integrity form ('sha256-<base64>') of a hex sha256."""
    return "sha256-" + base64.b64encode(bytes.fromhex(hex_digest)).decode()


@dataclass(frozen=True)
class ModelFiles:
    directory: Path
    model_id: str
    dim: int
    onnx: str
    files: dict[str, str]

    @property
    def onnx_path(self) -> Path:
        return self.directory / self.onnx

    @property
    def preprocess_path(self) -> Path:
        return self.directory / PREPROCESS

    def preprocess(self) -> dict[str, Any]:
        """The parsed preprocess.json, read once per instance (an export's files do not
        change under its manifest; ModelFiles.load sees a new one). A copy: callers may
        change it."""
        cached = self.__dict__.get("_preprocess")
        if cached is None:
            cached = json.loads(self.preprocess_path.read_text())
            object.__setattr__(self, "_preprocess", cached)  # frozen: a cache, not state
        return copy.deepcopy(cached)

    @staticmethod
    def directory_for(cache_dir: Path, model_id: str) -> Path:
        return cache_dir / model_key(model_id)

    @classmethod
    def load(cls, cache_dir: Path, model_id: str) -> "ModelFiles | None":
        """The exported files of `model_id`, or None when it was never exported here."""
        directory = cls.directory_for(cache_dir, model_id)
        manifest = directory / MANIFEST
        if not manifest.exists():
            return None
        data = json.loads(manifest.read_text())
        return cls(directory, data["model_id"], int(data["dim"]), data["onnx"], data["files"])

    def write_manifest(self) -> None:
        body = {"model_id": self.model_id, "dim": self.dim, "onnx": self.onnx, "files": self.files}
        tmp = self.directory / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(body, indent=2))
        tmp.replace(self.directory / MANIFEST)  # readers never see a half-written manifest
