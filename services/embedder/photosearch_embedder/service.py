"""Images -> fingerprints: decode and preprocess on a pool of threads, then one model
call for the whole batch. Used by the queue worker and by the gRPC API alike."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from photosearch.common.images import InvalidImage
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.preprocess import PreprocessSpec
from photosearch_embedder.variants import Variant, parse_variants


@dataclass(frozen=True)
class Fingerprints:
    """The vectors of one image, one per variant ("global" first); or why there are none."""

    vectors: dict[str, list[float]]
    error: InvalidImage | None = None


class Embedder:
    def __init__(self, manager: ModelManager, *, decode_threads: int = 2) -> None:
        self.manager = manager
        self.preprocess = PreprocessSpec.from_json(manager.files.preprocess())
        self._decoders = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")

    @property
    def model_id(self) -> str:
        return self.manager.model_id

    @property
    def dim(self) -> int:
        return self.manager.dim

    async def _tensors(self, data: bytes, variants: list[Variant]) -> np.ndarray | InvalidImage:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._decoders, self.preprocess.tensors, data, variants
            )
        except InvalidImage as exc:
            return exc

    async def embed(self, images: list[bytes], variant_names: list[str]) -> list[Fingerprints]:
        """One result per image, in order. An undecodable image gets its reason, never
        an exception, so one bad photo does not spoil the batch."""
        variants = parse_variants(variant_names)
        decoded = await asyncio.gather(*(self._tensors(d, variants) for d in images))
        good = [t for t in decoded if not isinstance(t, InvalidImage)]
        vectors = await self.manager.encode(np.concatenate(good)) if good else None
        results: list[Fingerprints] = []
        row = 0
        for item in decoded:
            if isinstance(item, InvalidImage):
                results.append(Fingerprints({}, item))
                continue
            assert vectors is not None
            rows = vectors[row : row + len(variants)]
            row += len(variants)
            results.append(
                Fingerprints({v.name: r.tolist() for v, r in zip(variants, rows, strict=True)})
            )
        return results

    async def embed_one(self, image: bytes, variant_names: list[str]) -> dict[str, list[float]]:
        """Raises InvalidImage (an InvalidArgument) when the bytes are not a usable image."""
        (result,) = await self.embed([image], variant_names)
        if result.error is not None:
            raise result.error
        return result.vectors

    def close(self) -> None:
        self._decoders.shutdown(wait=False)
