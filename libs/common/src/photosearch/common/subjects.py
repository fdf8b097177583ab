"""NATS names every service agrees on: subjects, streams, consumers, KV buckets."""

import hashlib
import re

# catalog's outbox publishes these (stream CATALOG).
IMAGE_ADDED = "catalog.image.added"
IMAGE_DELETED = "catalog.image.deleted"
ITEM_UPSERTED = "catalog.item.upserted"
ITEM_DELETED = "catalog.item.deleted"
CATALOG_STREAM = "CATALOG"
CATALOG_SUBJECTS = ["catalog.>"]

# Embed jobs: a work queue, one subject per model so each model has its own consumer.
EMBED_JOBS_STREAM = "EMBED_JOBS"
EMBED_JOBS_SUBJECTS = ["embed.jobs.>"]

# What embedders produce (stream EMBED_RESULTS), consumed by search.
EMBED_COMPLETED = "embed.completed"
EMBED_FAILED = "embed.failed"
EMBED_RESULTS_STREAM = "EMBED_RESULTS"
EMBED_RESULTS_SUBJECTS = [EMBED_COMPLETED, EMBED_FAILED]

# Worker presence: one expiring entry per live embedder.
WORKERS_BUCKET = "embed_workers"

# Header names carried on every message.
REQUEST_ID_HEADER = "X-Request-Id"
MSG_ID_HEADER = "Nats-Msg-Id"  # JetStream de-duplicates on it

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def model_key(model_id: str) -> str:
    """A subject/consumer-safe token for a model id such as 'facebook/dinov2-small@p1'."""
    readable = _UNSAFE.sub("_", model_id).strip("_")[:40]
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def embed_job_subject(model_id: str) -> str:
    return f"embed.jobs.{model_key(model_id)}"


def embed_consumer_name(model_id: str) -> str:
    return f"embedder-{model_key(model_id)}"
