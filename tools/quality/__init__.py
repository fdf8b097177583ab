"""Retrieval-quality evaluation of photosearch and the techniques that improve it.

Every technique here is a plain function over numpy arrays (or an onnxruntime
session), independent of the model that made the descriptors, so that it can move
into the embedder, search or the browser unchanged."""
