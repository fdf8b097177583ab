"""Helpers for the embedder's integration tests: a per-test model id (so tests never
share a queue), jobs in, results out of the real JetStream streams."""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from photosearch.common import subjects
from photosearch.common.model_files import ModelFiles, sha256_file
from photosearch.common.nats import publish
from photosearch.events.v1 import events_pb2
from photosearch_embedder.config import EmbedderSettings


def export_for_this_test(files: ModelFiles, root: Path, *, local: bool = True) -> ModelFiles:
    """The tiny export under a fresh model id: its own subject, consumer and results.
    Without `local`: as exported before local.onnx existed."""
    model_id = f"test/tiny-{uuid.uuid4().hex[:8]}@1"
    directory = root / "export"
    directory.mkdir(parents=True)
    names = [n for n in files.files if local or n != "local.onnx"]
    for name in names:
        (directory / name).write_bytes((files.directory / name).read_bytes())
    if not local:
        document = json.loads((directory / "preprocess.json").read_text())
        del document["local"]
        (directory / "preprocess.json").write_text(json.dumps(document))
    hashes = {n: sha256_file(directory / n) for n in names}
    placed = ModelFiles(directory, model_id, files.dim, files.onnx, hashes)
    placed.write_manifest()
    return placed


def settings_for(nats_url: str, model: ModelFiles, **overrides: Any) -> EmbedderSettings:
    values: dict[str, Any] = dict(
        grpc_port=0,
        nats_url=nats_url,
        model=str(model.directory),
        model_cache_dir=model.directory.parent / "cache",
        fetch_timeout_seconds=0.3,
        heartbeat_interval_seconds=0.5,
        heartbeat_ttl_seconds=3,
        ack_wait_seconds=3,
        model_idle_grace=300,
        batch_size=4,
        shutdown_grace_seconds=2,
    )
    values.update(overrides)
    return EmbedderSettings(**values)


async def publish_jobs(js: JetStreamContext, model_id: str, refs: list[tuple[str, str]]) -> None:
    for image_id, item_id in refs:
        job = events_pb2.EmbedJob(image_id=image_id, item_id=item_id, model_id=model_id)
        await publish(js, subjects.embed_job_subject(model_id), job)


async def read_results(
    js: JetStreamContext, model_id: str
) -> tuple[list[events_pb2.EmbedCompleted], list[events_pb2.EmbedFailed]]:
    """Every result of `model_id` stored in EMBED_RESULTS (duplicates included)."""
    try:
        info = await js.stream_info(subjects.EMBED_RESULTS_STREAM)
    except NotFoundError:
        return [], []
    completed: list[events_pb2.EmbedCompleted] = []
    failed: list[events_pb2.EmbedFailed] = []
    if not info.state.messages:
        return completed, failed
    for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        try:
            raw = await js.get_msg(subjects.EMBED_RESULTS_STREAM, seq)
        except NotFoundError:
            continue
        if raw.subject == subjects.EMBED_COMPLETED:
            done = events_pb2.EmbedCompleted.FromString(raw.data or b"")
            if done.model_id == model_id:
                completed.append(done)
        elif raw.subject == subjects.EMBED_FAILED:
            fail = events_pb2.EmbedFailed.FromString(raw.data or b"")
            if fail.model_id == model_id:
                failed.append(fail)
    return completed, failed


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.1)
