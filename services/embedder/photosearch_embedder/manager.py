"""The model in memory: loaded on first work, unloaded when idle, memory given back.

Every model call runs on one dedicated inference thread (onnxruntime spreads one
call over all cores itself), never on the event loop; loads and unloads run on the
same thread, so they are ordered with the calls around them."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.metrics import EmbedderMetrics
from photosearch_embedder.preprocess import LocalSpec, PreprocessSpec
from photosearch_embedder.resolve import has_local
from photosearch_embedder.runtime import (
    FingerprintEncoder,
    LocalEncoder,
    pick_device,
    release_memory,
)
from photosearch_embedder.runtime_choice import RuntimeChoice, as_exported

log = get_logger(__name__)


class ModelManager:
    def __init__(
        self,
        files: ModelFiles,
        *,
        device: str = "cpu",
        idle_grace: float = 300.0,
        batch_size: int = 16,
        threads: int = 0,
        metrics: EmbedderMetrics | None = None,
        choice: RuntimeChoice | None = None,
    ) -> None:
        self.files = files
        self.metrics = metrics or EmbedderMetrics()
        self.preprocess = PreprocessSpec.from_json(files.preprocess())
        # The local graph, when the export has one (listed in its manifest).
        self.local: LocalSpec | None = self.preprocess.local if has_local(files) else None
        self.device = pick_device(device)
        self.idle_grace = idle_grace
        self.batch_size = batch_size
        self.threads = threads
        # The engines each graph runs in (default: onnxruntime, as exported).
        self.choice = choice or as_exported(files)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._encoder: FingerprintEncoder | None = None
        self._local: LocalEncoder | None = None
        self._busy = 0
        self._last_used = time.monotonic()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def model_id(self) -> str:
        return self.files.model_id

    @property
    def dim(self) -> int:
        return self.files.dim

    @property
    def local_dim(self) -> int:
        """Dimension of the local descriptors (0: this export has no local graph)."""
        return self.local.dim if self.local else 0

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    async def encode(self, pixel_values: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) -> (N, dim), in chunks of the batch size; loads the model if needed."""
        self._busy += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._encode, pixel_values)
        finally:
            self._busy -= 1
            self._last_used = time.monotonic()

    async def describe(self, pixel_values: np.ndarray) -> np.ndarray:
        """One photo's local input (1, 3, H, W) -> (local_dim, rows, cols) unit cells;
        loads the model if needed."""
        self._busy += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._describe, pixel_values)
        finally:
            self._busy -= 1
            self._last_used = time.monotonic()

    def _describe(self, pixel_values: np.ndarray) -> np.ndarray:
        if self.local is None:
            raise RuntimeError(f"{self.model_id} has no local graph")
        if self._local is None:
            self._load()
            chosen = self.choice.local
            assert chosen is not None, "an export with a local graph has a local choice"
            self._local = LocalEncoder(
                self.files, self.local, chosen.engine, self.device, self.threads, self.choice.cache
            )
        return self._local.describe(pixel_values)

    def _load(self) -> None:
        if self._encoder is None:
            started = time.monotonic()
            engine = self.choice.fingerprint.engine
            self._encoder = FingerprintEncoder(
                self.files, engine, self.device, self.threads, self.choice.cache
            )
            seconds = time.monotonic() - started
            self.metrics.model_load_seconds.labels(self.model_id).observe(seconds)
            log.info(
                "model.loaded",
                model_id=self.model_id,
                device=self.device,
                engine=engine.name,
                seconds=round(seconds, 2),
            )

    def _encode(self, pixel_values: np.ndarray) -> np.ndarray:
        self._load()
        encoder = self._encoder
        assert encoder is not None
        chunks = [
            encoder.encode(pixel_values[i : i + self.batch_size])
            for i in range(0, len(pixel_values), self.batch_size)
        ]
        return np.concatenate(chunks) if chunks else encoder.encode(pixel_values)

    async def maybe_unload(self, *, queue_drained: bool = False) -> bool:
        """Unload when idle long enough; with a grace of 0, as soon as the queue drained."""
        if self._encoder is None or self._busy:
            return False
        if self.idle_grace == 0 and not queue_drained:
            return False
        idle = time.monotonic() - self._last_used
        if idle < self.idle_grace:
            return False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._unload, idle)

    def _unload(self, idle: float) -> bool:
        if self._encoder is None or self._busy:
            return False
        self._encoder.close()
        self._encoder = None
        if self._local is not None:
            self._local.close()
            self._local = None
        release_memory()
        log.info("model.unloaded", model_id=self.model_id, idle_seconds=round(idle, 1))
        return True

    def start(self) -> None:
        if self.idle_grace > 0 and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_idle(), name="model-idle-watch")

    async def _watch_idle(self) -> None:
        interval = min(max(self.idle_grace / 4, 0.05), 5.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.maybe_unload()
            except Exception as exc:  # keep watching; a failed unload is retried
                log.error("model.unload_failed", error=str(exc))

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._unload, 0.0)
        self._thread.shutdown(wait=False)
