"""What each event does to search's state. Each method returns once its effect is
committed, so the caller may ack the message afterwards."""

from collections.abc import Sequence
from dataclasses import dataclass

from photosearch.common.errors import DomainError
from photosearch.common.infra import Infra
from photosearch.common.local import SALIENT_CELLS, LocalGrid, from_proto, keep_salient
from photosearch.common.logging import get_logger
from photosearch.events.v1 import events_pb2
from photosearch_search import coverage, local_store
from photosearch_search import repository as repo
from photosearch_search.domain import GLOBAL_VARIANT, EmbeddingIn, ImageRef, Model
from photosearch_search.jobs import EmbedJobQueue
from photosearch_search.models import ModelRegistry
from photosearch_search.summaries import summary_of
from photosearch_search.vectors import unit_vector
from photosearch_search.workers import WorkerDirectory

log = get_logger(__name__)

# Largest local dimension stored (DINOv2-large patch tokens are 1024-d).
MAX_LOCAL_DIM = 4096


@dataclass(frozen=True)
class CheckedResult:
    """An embed.completed whose vectors passed the checks (or the reason they did not)."""

    ref: ImageRef
    model_id: str
    embeddings: list[EmbeddingIn]
    problem: str = ""
    # The image's local descriptors (None: the event has none, or they were unusable).
    local: LocalGrid | None = None


def check_local(event: events_pb2.EmbedCompleted) -> LocalGrid | None:
    """The event's local descriptors, reduced to the most salient cells. Unusable ones
    are dropped (the vector is still good): search then re-ranks without this image."""
    if not event.HasField("local"):
        return None
    try:
        grid = keep_salient(from_proto(event.local, what="local descriptors"))
    except DomainError as exc:
        reason = str(exc)
    else:
        if len(grid) <= SALIENT_CELLS and grid.dim <= MAX_LOCAL_DIM:
            return grid
        # A selection cannot be reduced further (no neighbours to compare), and every
        # stored cell is paid for on each re-ranked search.
        reason = (
            f"a selection of {len(grid)} cells, more than the {SALIENT_CELLS} allowed"
            if len(grid) > SALIENT_CELLS
            else f"{grid.dim}-d cells, more than the {MAX_LOCAL_DIM} a model may have"
        )
    log.warning("local.dropped", image_id=event.image_id, model_id=event.model_id, reason=reason)
    return None


def check_completed(event: events_pb2.EmbedCompleted) -> CheckedResult:
    ref = ImageRef(event.image_id, event.item_id)
    if not event.embeddings:
        return CheckedResult(ref, event.model_id, [], "the embedder sent no vector")
    by_variant = {e.variant or GLOBAL_VARIANT: e for e in event.embeddings}
    first = by_variant.get(GLOBAL_VARIANT, event.embeddings[0])
    dim = len(first.values)
    try:
        embeddings = [
            EmbeddingIn(v, unit_vector(e.values, dim, f"vector {v!r}", event.model_id))
            for v, e in sorted(by_variant.items())
        ]
    except DomainError as exc:
        return CheckedResult(ref, event.model_id, [], f"unusable vector: {exc}")
    return CheckedResult(ref, event.model_id, embeddings, local=check_local(event))


class Indexer:
    def __init__(
        self,
        infra: Infra,
        registry: ModelRegistry,
        queue: EmbedJobQueue,
        workers: WorkerDirectory,
    ) -> None:
        self._infra = infra
        self._registry = registry
        self._queue = queue
        self._workers = workers

    async def target_models(self) -> list[str]:
        """The active model, plus every model a live worker embeds (built beside it)."""
        active = await self._registry.active_model_id()
        models = {w.model_id for w in self._workers.last_seen}
        if active:
            models.add(active)
        return sorted(models)

    async def image_added(self, event: events_pb2.ImageAdded) -> None:
        ref = ImageRef(event.image_id, event.item_id)
        pool = self._infra.require_pool()
        for model_id in await self.target_models():
            model = await self._registry.get(model_id)
            async with pool.connection() as conn:
                state = (await coverage.image_states(conn, model, model_id, [ref.image_id]))[
                    ref.image_id
                ]
            if state.deleted:
                return
            if state.embedded or state.failed or state.queued_age is not None:
                continue  # a redelivered event: the job exists already
            await self._queue.publish(model_id, [ref], attempt="added")
            async with pool.connection() as conn:
                await coverage.record_jobs(conn, model_id, [ref], rebuild_id=None)

    async def image_deleted(self, event: events_pb2.ImageDeleted) -> None:
        async with self._infra.require_pool().connection() as conn, conn.transaction():
            await repo.lock_items(conn, [event.item_id])
            models = await self._registry.all_seen_by(conn)
            await repo.delete_images(conn, models, [event.image_id])

    async def item_deleted(self, event: events_pb2.ItemDeleted) -> None:
        async with self._infra.require_pool().connection() as conn, conn.transaction():
            await repo.lock_items(conn, [event.item_id])
            models = await self._registry.all_seen_by(conn)
            await repo.delete_item(conn, models, event.item_id, list(event.image_ids))

    async def item_upserted(self, event: events_pb2.ItemUpserted, seq: int) -> None:
        """`seq` orders the events of one item (the CATALOG stream sequence)."""
        series = event.series.strip().lower() or None
        maker = event.maker.strip().lower() or None
        tags = sorted({t.strip().lower() for t in event.tags if t.strip()})
        async with self._infra.require_pool().connection() as conn, conn.transaction():
            await repo.lock_items(conn, [event.item_id])
            # Read after the lock: the item's first vector may have registered its model.
            models = await self._registry.all_seen_by(conn)
            await repo.upsert_item(
                conn, models, event.item_id, (series, maker, tags), seq, summary_of(event)
            )

    async def embed_results(
        self,
        completed: Sequence[events_pb2.EmbedCompleted],
        failed: Sequence[events_pb2.EmbedFailed],
    ) -> None:
        """Store vectors and failures in one transaction (idempotent: safe to redo)."""
        checked = [check_completed(e) for e in completed]
        models: dict[str, Model] = {}
        failures: list[tuple[str, ImageRef, str]] = [
            (e.model_id, ImageRef(e.image_id, e.item_id), e.reason or "no reason given")
            for e in failed
        ]
        stored: list[CheckedResult] = []
        for result in checked:
            if result.problem:
                failures.append((result.model_id, result.ref, result.problem))
                continue
            try:
                model = await self._registry.ensure(
                    result.model_id, len(result.embeddings[0].values)
                )
            except DomainError as exc:  # e.g. a worker configured with the wrong dimension
                failures.append((result.model_id, result.ref, str(exc)))
                continue
            models[model.model_id] = model
            stored.append(result)
        for model_id, _, _ in failures:
            if model_id not in models and (known := await self._registry.get(model_id)):
                models[model_id] = known
        items = [r.ref.item_id for r in stored] + [f[1].item_id for f in failures]
        async with self._infra.require_pool().connection() as conn, conn.transaction():
            await repo.lock_items(conn, items)
            for result in stored:
                model = models[result.model_id]
                kept = await repo.store_embeddings(conn, model, result.ref, result.embeddings)
                if not kept:
                    log.info("vector.dropped_deleted", image_id=result.ref.image_id)
                elif result.local is not None:
                    # An event without descriptors (an older embedder) keeps the stored
                    # ones: an image's bytes never change, so they still describe it.
                    problem = await local_store.store_local(conn, model, result.ref, result.local)
                    if problem:
                        log.warning("local.dropped", image_id=result.ref.image_id, reason=problem)
            for model_id, ref, reason in failures:
                await repo.record_failure(conn, models.get(model_id), model_id, ref, reason)
                log.info("embed.failed", image_id=ref.image_id, model_id=model_id, reason=reason)
