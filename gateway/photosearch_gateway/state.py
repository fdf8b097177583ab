"""The gateway's composition root: one channel and client per upstream service,
the short-lived caches, the rate limiters and the metrics, opened once per app."""

import asyncio
import ipaddress
import time

import grpc
from fastapi import Request
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch.catalog.v1 import catalog_pb2 as catalog_pb
from photosearch.common.channels import open_channel
from photosearch.common.model_files import ModelFiles
from photosearch_gateway.cache import Cached
from photosearch_gateway.clients.base import Upstream
from photosearch_gateway.clients.catalog import CatalogClient
from photosearch_gateway.clients.embedder import EmbedderClient
from photosearch_gateway.clients.fallback import FallbackClient
from photosearch_gateway.clients.search import SearchClient
from photosearch_gateway.config import GatewaySettings
from photosearch_gateway.errors import ApiError
from photosearch_gateway.metrics import Metrics
from photosearch_gateway.nearest_cache import NearestCache
from photosearch_gateway.oidc import OidcConfig, OidcVerifier
from photosearch_gateway.ratelimit import RateLimiter

SETTINGS_STALE_SECONDS = 600.0

SERVICES = ("catalog", "search", "embedder", "fallback")
NO_ACTIVE_MODEL = "no_active_model"


class Gateway:
    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        addresses = {
            "catalog": settings.catalog_addr,
            "search": settings.search_addr,
            "embedder": settings.embedder_addr,
            "fallback": settings.fallback_addr,
        }
        self.channels = {name: open_channel(addresses[name], settings.tls_dir) for name in SERVICES}

        def upstream(name: str, timeout: float | None = None) -> Upstream:
            return Upstream(
                name,
                self.channels[name],
                metrics,
                timeout=timeout or settings.rpc_timeout_seconds,
                retry_after=settings.retry_after_seconds,
            )

        self.catalog = CatalogClient(upstream("catalog"), settings.admin_timeout_seconds)
        self.search = SearchClient(upstream("search"), settings.admin_timeout_seconds)
        self.embedder = EmbedderClient(upstream("embedder"))
        self.fallback = FallbackClient(upstream("fallback", settings.fallback_timeout_seconds))
        # Every search checks these; while catalog is unreachable the last ones seen serve
        # (up to SETTINGS_STALE_SECONDS), so searches do not go down with it.
        self.catalog_settings: Cached[catalog_pb.Settings] = Cached(
            self.catalog.get_settings, settings.cache_seconds, SETTINGS_STALE_SECONDS
        )
        self.active_model: Cached[str] = Cached(self._load_active_model, settings.cache_seconds)
        self.limiters = {
            "search": RateLimiter(settings.search_rate_per_minute, settings.search_burst),
            "fallback": RateLimiter(settings.fallback_rate_per_minute, settings.fallback_burst),
            "write": RateLimiter(settings.write_rate_per_minute, settings.write_burst),
            "write_address": RateLimiter(
                settings.write_address_rate_per_minute, settings.write_address_burst
            ),
        }
        self.oidc = OidcVerifier(oidc_config(settings)) if settings.oidc_issuer else None
        # The review queue's nearest items per pending photo (review_queue.py).
        self.nearest = NearestCache()
        self._model_files: dict[str, tuple[float, ModelFiles | None]] = {}
        self.trusted_proxies = [
            ipaddress.ip_network(p.strip(), strict=False)
            for p in settings.trusted_proxies.split(",")
            if p.strip()
        ]

    def is_trusted_proxy(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)

    async def _load_active_model(self) -> str:
        for model in await self.search.list_models():
            if model.active:
                return model.model_id
        # No vector yet for any model: search still knows which model is configured.
        status = await self.search.index_status()
        if not status.active_model_id:
            raise ApiError(
                409,
                NO_ACTIVE_MODEL,
                "search has no active model yet: it adopts the model of the first embedder "
                "worker that comes online",
            )
        return status.active_model_id

    def model_files(self, model_id: str) -> ModelFiles | None:
        """The exported files of a model, when the embedder has written them here
        (looked up again after cache_seconds, so a new export is seen without a restart)."""
        now = time.monotonic()
        cached = self._model_files.get(model_id)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            files = ModelFiles.load(self.settings.model_dir, model_id)
        except (OSError, ValueError, KeyError):
            files = None  # half-written or unreadable: treat as not exported yet
        self._model_files[model_id] = (now + self.settings.cache_seconds, files)
        return files

    async def health(self) -> dict[str, str]:
        async def check(name: str) -> tuple[str, str]:
            stub = health_pb2_grpc.HealthStub(self.channels[name])
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                return name, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.aio.AioRpcError as exc:
                return name, exc.code().name

        return dict(await asyncio.gather(*(check(name) for name in SERVICES)))

    async def close(self) -> None:
        await asyncio.gather(*(c.close(None) for c in self.channels.values()))
        if self.oidc is not None:
            await self.oidc.close()


def oidc_config(settings: GatewaySettings) -> OidcConfig:
    return OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        roles_claim=settings.oidc_roles_claim,
        algorithms=settings.oidc_algorithm_list(),
        cache_seconds=settings.oidc_jwks_cache_seconds,
        leeway_seconds=settings.oidc_leeway_seconds,
    )


async def gateway(request: Request) -> Gateway:
    """FastAPI dependency: the app's Gateway."""
    gw: Gateway = request.app.state.gateway
    return gw
