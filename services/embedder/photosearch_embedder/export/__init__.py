"""The model export: PyTorch weights -> the ONNX files the service serves. Run as

    python -m photosearch_embedder.export --model <auto|name|dir> --cache-dir <dir>

(cli.py) by the Kubernetes init container, by `make` and by the serving process itself
on first start (prepare.py, in a child process). Needs torch, transformers, geffnet and
onnx; the serving modules never import this package (tests/unit/embedder/
test_serving_imports.py), so what serves never loads torch.

    cli.py                argument parsing, then resolve -> copy / keep / export
    cache.py              exports in the model cache: lock, write, complete, manifest
    fingerprint_onnx.py   write and check the fingerprint graph (fp32, int8)
    local_onnx.py         write and check local.onnx
    calibration.py        the photos (photos/) every check runs on
    fingerprint_graph.py  the fingerprint networks as PyTorch modules
    local_graph.py        the local-descriptor networks and their PCA
    weights.py            load each model family's weights into PyTorch"""

from photosearch_embedder.export.cache import copy_export, export_model
from photosearch_embedder.export.cli import main, run

__all__ = ["copy_export", "export_model", "main", "run"]
