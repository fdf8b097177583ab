"""photosearch embedder service: image bytes -> fingerprints (and local descriptors),
for the JetStream work queue and the gRPC API.

Serving (`python -m photosearch_embedder`) imports exactly what server.py imports:

    server.py      wiring: builds every part below and the gRPC server
    config.py      settings (EMBED_*) and the options they map to
    servicer.py    gRPC <-> Embedder calls and the status
    lifecycle.py   bring-up order: prepare the model, open it, start queue work
    status.py      what the embedder is right now (read by Info and the heartbeat)
    prepare.py     the model's exported files, exporting first in a child process
    resolve.py     which model, and whether its export is in the cache
    models.py      the known models, their ids and preprocessing
    service.py     images -> fingerprints (Embedder)
    manager.py     the model in memory: loaded on demand, unloaded when idle
    runtime.py     onnxruntime sessions on CPU or CUDA
    preprocess.py  image -> model input, as preprocess.json defines it
    variants.py    the extra views of an image that get their own vector
    worker.py      the pull loop of the embed-job queue
    jobs.py        one batch of jobs: embed, publish the result, settle
    heartbeat.py   worker presence in the embed_workers KV bucket
    source.py      image bytes from catalog

The export (`photosearch_embedder.export`, `python -m photosearch_embedder.export`)
turns PyTorch weights into those ONNX files. No serving module imports it, so serving
never loads torch (tests/unit/embedder/test_serving_imports.py); prepare.py is the one
place serving reaches it, by running it as a child process."""
