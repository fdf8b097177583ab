"""Images -> fingerprints: decode and preprocess on a pool of threads, then one model
call for the whole batch; then, when asked, the local descriptors of each whole photo
(one call per photo and turn: sizes differ), reduced to its most salient cells. Used by
the queue worker and by the gRPC API alike."""

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from photosearch.common.errors import FailedPrecondition, InvalidArgument
from photosearch.common.images import InvalidImage
from photosearch.common.local import LocalGrid, from_feature_map, keep_salient
from photosearch.common.logging import get_logger
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.preprocess import ROTATIONS
from photosearch_embedder.variants import Variant, parse_variants

log = get_logger(__name__)
# Local passes one request may ask for (each costs about one more model call).
MAX_LOCAL_ROTATIONS = 4


@dataclass(frozen=True)
class Fingerprints:
    """The vectors of one image, one per variant ("global" first); or why there are none.
    `local`: one grid per asked rotation, in order; `local_error`: why they are missing
    (the vectors are still good)."""

    vectors: dict[str, list[float]]
    error: InvalidImage | None = None
    local: tuple[LocalGrid, ...] = ()
    local_error: str = ""


@dataclass(frozen=True)
class EmbedAsk:
    """One photo and what is asked of it: extra variants, local-descriptor turns."""

    image: bytes
    variants: tuple[str, ...] = ()
    rotations: tuple[int, ...] = ()


def parse_rotations(angles: Sequence[int]) -> tuple[int, ...]:
    """Clockwise turns for local descriptors: each 0, 90, 180 or 270, at most
    MAX_LOCAL_ROTATIONS of them."""
    if len(angles) > MAX_LOCAL_ROTATIONS:
        raise InvalidArgument(
            f"local_rotations: at most {MAX_LOCAL_ROTATIONS} angles per image, got {len(angles)}"
        )
    for angle in angles:
        if angle not in ROTATIONS:
            raise InvalidArgument(
                f"local_rotations: {angle} is not a supported angle; use 0, 90, 180 or 270 "
                "(degrees clockwise)"
            )
    return tuple(angles)


class Embedder:
    def __init__(self, manager: ModelManager, *, decode_threads: int = 2) -> None:
        self.manager = manager
        self.preprocess = manager.preprocess
        self._decoders = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")

    @property
    def model_id(self) -> str:
        return self.manager.model_id

    @property
    def dim(self) -> int:
        return self.manager.dim

    @property
    def local_dim(self) -> int:
        return self.manager.local_dim

    @property
    def device(self) -> str:
        return self.manager.device

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory now (it loads on first work, leaves when idle)."""
        return self.manager.loaded

    def check_rotations(self, angles: Sequence[int]) -> tuple[int, ...]:
        """Validated rotations; FailedPrecondition when the model has no local graph."""
        rotations = parse_rotations(angles)
        if rotations and not self.local_dim:
            raise FailedPrecondition(
                f"model {self.model_id} has no local-descriptor graph (its export predates "
                "local.onnx or could not be completed): ask without local_rotations, or "
                "export the model again with python -m photosearch_embedder.export"
            )
        return rotations

    def _decode(self, data: bytes, variants: list[Variant]) -> tuple[np.ndarray, Image.Image]:
        image = self.preprocess.decode(data, variants)
        return np.stack([self.preprocess.view(image, v) for v in variants]), image

    async def _tensors(
        self, data: bytes, variants: list[Variant]
    ) -> tuple[np.ndarray, Image.Image] | InvalidImage:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._decoders, self._decode, data, variants)
        except InvalidImage as exc:
            return exc

    async def local_grid(self, image: Image.Image, degrees: int) -> LocalGrid:
        """The salient cells of the decoded photo turned clockwise by `degrees`."""
        loop = asyncio.get_running_loop()
        tensor = await loop.run_in_executor(
            self._decoders, self.preprocess.local_tensor, image, degrees
        )
        feature_map = await self.manager.describe(tensor)
        return await loop.run_in_executor(
            self._decoders, lambda: keep_salient(from_feature_map(feature_map))
        )

    async def _with_local(
        self,
        result: Fingerprints,
        decoded: tuple[np.ndarray, Image.Image] | InvalidImage,
        rotations: tuple[int, ...],
    ) -> Fingerprints:
        if isinstance(decoded, InvalidImage):
            return result
        try:
            grids = [await self.local_grid(decoded[1], angle) for angle in rotations]
        except Exception as exc:  # the fingerprints stay good; the caller decides
            log.exception("embed.local_failed", error=str(exc))
            return Fingerprints(result.vectors, local_error=f"local descriptors failed: {exc}")
        return Fingerprints(result.vectors, local=tuple(grids))

    async def embed(
        self, images: list[bytes], variant_names: list[str], local_rotations: Sequence[int] = ()
    ) -> list[Fingerprints]:
        """One result per image, in order. An undecodable image gets its reason, never
        an exception, so one bad photo does not spoil the batch; so does a photo whose
        local pass failed (`local_error`, with its vectors)."""
        variants = parse_variants(variant_names)
        rotations = self.check_rotations(local_rotations)
        decoded = await asyncio.gather(*(self._tensors(d, variants) for d in images))
        good = [t for t, _ in (d for d in decoded if not isinstance(d, InvalidImage))]
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
        if rotations:
            results = list(
                await asyncio.gather(
                    *(
                        self._with_local(result, item, rotations)
                        for result, item in zip(results, decoded, strict=True)
                    )
                )
            )
        return results

    async def embed_each(self, asks: Sequence[EmbedAsk]) -> list[Fingerprints]:
        """One result per ask, in order (as `embed`), with one `embed` call for all the
        asks that want the same variants and turns."""
        groups: dict[tuple[tuple[str, ...], tuple[int, ...]], list[int]] = {}
        for index, ask in enumerate(asks):
            groups.setdefault((ask.variants, ask.rotations), []).append(index)
        results: list[Fingerprints | None] = [None] * len(asks)
        for (variants, rotations), indexes in groups.items():
            found = await self.embed([asks[i].image for i in indexes], list(variants), rotations)
            for i, result in zip(indexes, found, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    async def embed_photo(
        self, image: bytes, variant_names: list[str], local_rotations: Sequence[int] = ()
    ) -> Fingerprints:
        """One photo's vectors and local grids. Raises InvalidImage (an InvalidArgument)
        when the bytes are not a usable image, RuntimeError when its local pass failed."""
        (result,) = await self.embed([image], variant_names, local_rotations)
        if result.error is not None:
            raise result.error
        if result.local_error:
            raise RuntimeError(result.local_error)
        return result

    def close(self) -> None:
        self._decoders.shutdown(wait=False)
