"""The admin's view of the index: status with the rebuild gate, rebuild, the
model switch and the duplicates report enriched with item names."""

import asyncio

from photosearch.events.v1 import events_pb2
from photosearch_gateway import duplicate_pairs
from photosearch_gateway.admin_schemas import (
    DuplicateReport,
    EmbedderInfo,
    IndexStatus,
    Model,
    ModelList,
    RebuildAccepted,
    RebuildGate,
    RuntimeTrial,
)
from photosearch_gateway.errors import ApiError
from photosearch_gateway.schemas import ItemSummary
from photosearch_gateway.state import Gateway

EMBED_CAPABILITY = "embed"


def rebuild_gate(workers: list[events_pb2.WorkerHeartbeat], model_id: str) -> RebuildGate:
    """A rebuild only helps while a worker that embeds with `model_id` is online."""
    capable = [w for w in workers if EMBED_CAPABILITY in w.capabilities]
    if not capable:
        return RebuildGate(
            allowed=False,
            reason="no embedder worker is online: start one (it registers within seconds), "
            "then rebuild",
        )
    if not any(w.model_id == model_id for w in capable):
        online = ", ".join(sorted({w.model_id for w in capable}))
        return RebuildGate(
            allowed=False,
            reason=f"no embedder worker for {model_id} is online (workers run {online}): "
            f"start one with that model, then rebuild",
        )
    return RebuildGate(allowed=True, reason=None)


async def embedder_info(gw: Gateway) -> EmbedderInfo:
    """The embedder's own account of its model; the page still works when it is down."""
    try:
        info = await gw.embedder.info()
    except ApiError:
        return EmbedderInfo(reachable=False)
    return EmbedderInfo(
        reachable=True,
        model_id=info.model_id or None,
        device=info.device or None,
        quantization=info.quantization or None,
        available=info.available,
        model_note=info.model_note or None,
        runtime_setting=info.runtime_setting or None,
        runtime=info.runtime or None,
        local_runtime=info.local_runtime or None,
        runtime_cached=info.runtime_cached,
        runtime_trials=[RuntimeTrial.from_proto(t) for t in info.runtime_trials],
    )


async def index_status(gw: Gateway, model_id: str) -> IndexStatus:
    status, embedder = await asyncio.gather(gw.search.index_status(model_id), embedder_info(gw))
    gate = rebuild_gate(list(status.workers), status.model_id or status.active_model_id)
    return IndexStatus.from_proto(status, gate, embedder)


async def rebuild(gw: Gateway, model_id: str | None, retry_failed: bool) -> RebuildAccepted:
    # Checked here, before search is asked, so the admin gets the reason even if search's
    # own check changes; search refuses too (FAILED_PRECONDITION -> 409) in case of a race.
    status = await gw.search.index_status(model_id or "")
    target = model_id or status.model_id or status.active_model_id
    gate = rebuild_gate(list(status.workers), target)
    if not gate.allowed:
        raise ApiError(409, "no_embed_worker", gate.reason or "no embedder worker is online")
    reply = await gw.search.rebuild(target, retry_failed)
    return RebuildAccepted(
        model_id=reply.model_id or target,
        queued=reply.queued,
        already_queued=reply.already_queued,
        in_progress=reply.in_progress,
    )


async def list_models(gw: Gateway) -> ModelList:
    models = await gw.search.list_models()
    active = next((m.model_id for m in models if m.active), None)
    return ModelList(
        active_model_id=active,
        models=[
            Model(
                model_id=m.model_id,
                dim=m.dim,
                embedded=m.embedded,
                active=m.active,
                browser_ready=gw.model_files(m.model_id) is not None,
            )
            for m in models
        ],
    )


async def set_active_model(gw: Gateway, model_id: str, force: bool) -> str:
    if gw.model_files(model_id) is None and not force:
        raise ApiError(
            409,
            "model_not_exported",
            f"browsers cannot compute {model_id} fingerprints: its ONNX export is not in "
            "the model directory (let an embedder with that model start, or force)",
        )
    active = await gw.search.set_active_model(model_id, force)
    gw.active_model.put(active)
    return active


async def duplicate_report(
    gw: Gateway, model_id: str, threshold: float, limit: int, hash_distance: int
) -> DuplicateReport:
    """Search's fingerprint pairs and catalog's copy-hash pairs, merged (duplicate_pairs)."""
    report, copies = await asyncio.gather(
        gw.search.duplicate_report(model_id, threshold, limit),
        gw.catalog.find_copies(hash_distance, limit),
    )
    pairs = duplicate_pairs.merge(list(report.duplicates), list(copies.pairs), limit)
    ids = {p.item_id_a for p in pairs} | {p.item_id_b for p in pairs}
    ids |= {c.item_id for c in report.confusables} | {c.nearest_item_id for c in report.confusables}
    ordered = sorted(ids)
    # BatchGetItems in slices keeps each message small on a large report.
    slices = [ordered[i : i + 500] for i in range(0, len(ordered), 500)]
    found = await asyncio.gather(*(gw.catalog.batch_get_items(s) for s in slices))
    items = {k: ItemSummary.from_proto(v) for part in found for k, v in part.items()}
    return DuplicateReport.from_proto(report, copies, pairs, items)
