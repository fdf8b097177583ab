"""Settings of the embedder service (environment variables prefixed EMBED_), and their
mapping onto the options of the parts they configure."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from photosearch.common.errors import InvalidArgument
from photosearch.common.settings import NatsSettings, ServiceSettings
from photosearch_embedder.prepare import ModelRequest
from photosearch_embedder.runtime_choice import ChoiceRequest, RuntimeSetting
from photosearch_embedder.variants import parse_variants
from photosearch_embedder.worker import WorkerOptions


class EmbedderSettings(NatsSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBED_")

    grpc_port: int = 50053
    # "auto" (DINOv2-small when its weights can be had, else efficientnet-lite0),
    # a model name (facebook/dinov2-small, efficientnet-lite0, ...) or a local directory
    # (a transformers checkpoint or an exported model).
    model: str = "auto"
    # Name vectors are tagged with when `model` is a directory holding a checkpoint of a
    # published model (e.g. facebook/dinov2-small); default: the directory's name.
    model_name: str = ""
    # Where exported ONNX models live ({dir}/{model key}/manifest.json, ...).
    model_cache_dir: Path = Path("models")
    # "auto" = the model family's default (see docs/models.md).
    quantize: Literal["auto", "int8", "none"] = "auto"
    device: Literal["cpu", "cuda"] = "cpu"
    # Which runtime runs the graphs: "auto" times every installed candidate (onnxruntime
    # int8/fp32, OpenVINO fp32/bf16/int8, PyTorch bf16) on first start on a host and
    # serves with the fastest whose fingerprints match fp32 (runtime_choice.py);
    # "openvino" and "torch" choose among that runtime's precisions only; "onnxruntime"
    # runs the export's graph as exported, untimed.
    runtime: RuntimeSetting = "auto"
    # Seconds each candidate is timed for (per graph), once per host and model.
    runtime_probe_seconds: float = Field(default=2.0, gt=0, le=60)
    # Where the runtime choice and OpenVINO's int8 graphs are kept (a folder per model);
    # empty: beside the export in the model cache. Set it where that cache is read-only.
    runtime_cache_dir: Path | None = None
    # Seconds without work before the model leaves memory; 0 = as soon as the queue drains.
    model_idle_grace: float = Field(default=300.0, ge=0)
    batch_size: int = Field(default=16, ge=1, le=256)
    # Batches a worker has in hand at once (the next one decodes while the model runs).
    pipeline_batches: int = Field(default=2, ge=1, le=8)
    # Catalog's gRPC address (where image bytes come from).
    catalog_addr: str = "127.0.0.1:50051"
    catalog_timeout_seconds: float = Field(default=20.0, gt=0)
    # Variants embedded for every queued image, comma-separated: "global" always comes
    # first; extra views are "mirror" and "crop:F".
    index_variants: Annotated[list[str], NoDecode] = ["global"]
    # Seconds a fetched job may stay un-acknowledged before JetStream redelivers it.
    ack_wait_seconds: float = Field(default=60.0, ge=1)
    # Seconds the worker waits for jobs per pull.
    fetch_timeout_seconds: float = Field(default=2.0, gt=0)
    heartbeat_interval_seconds: float = Field(default=3.0, gt=0)
    heartbeat_ttl_seconds: float = Field(default=10.0, ge=1)
    # How long `auto` (or a hub name) may try to reach the model hub before giving up.
    hub_probe_seconds: float = Field(default=4.0, gt=0)
    # Unique per replica; default hostname-pid.
    worker_id: str = ""
    # Threads that decode images (inference has its own single thread; onnxruntime
    # uses every core inside it).
    decode_threads: int = Field(default=2, ge=1, le=64)
    # Threads onnxruntime uses inside one inference call; 0 = one per core.
    inference_threads: int = Field(default=0, ge=0, le=256)

    @field_validator("runtime_cache_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("index_variants", mode="before")
    @classmethod
    def _split_variants(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            try:
                return [v.name for v in parse_variants([str(v) for v in value])]
            except InvalidArgument as exc:
                raise ValueError(str(exc)) from None
        return value

    def model_request(self) -> ModelRequest:
        return ModelRequest(
            self.model,
            self.model_cache_dir,
            model_name=self.model_name,
            quantize=self.quantize,
            probe_seconds=self.hub_probe_seconds,
        )

    def choice_request(self, device: str) -> ChoiceRequest:
        return ChoiceRequest(
            self.runtime,
            device,
            threads=self.inference_threads,
            batch_size=self.batch_size,
            probe_seconds=self.runtime_probe_seconds,
            cache_dir=self.runtime_cache_dir,
        )

    def worker_options(self, worker_id: str) -> WorkerOptions:
        return WorkerOptions(
            worker_id=worker_id,
            batch_size=self.batch_size,
            variants=tuple(self.index_variants),
            ack_wait=self.ack_wait_seconds,
            fetch_timeout=self.fetch_timeout_seconds,
            pipeline=self.pipeline_batches,
        )
