"""The FastAPI application: wiring only. Routes are thin, gRPC clients do the work."""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from photosearch.common.metrics import serve_metrics
from photosearch_gateway.config import GatewaySettings
from photosearch_gateway.errors import ErrorBody, install_error_handlers
from photosearch_gateway.metrics import Metrics
from photosearch_gateway.middleware import BodyLimit, RequestContext
from photosearch_gateway.routes import (
    admin,
    admin_catalog,
    assets,
    fallback,
    imports,
    items,
    public,
    review,
    sign_in,
    system,
)
from photosearch_gateway.schemas import SearchQuery
from photosearch_gateway.state import Gateway

UPLOAD_PATHS = re.compile(r"^/api/v1/(items/[^/]+/images|fallback/web)$")
SEARCH_PATH = "/api/v1/search"
DESCRIPTION = """Photograph an object and get the catalog entry it is. The page computes the
photo's fingerprint (and its local descriptors, when the model has them) on the device
(`GET /api/v1/config` says which model and preprocessing) and sends only those vectors to
`POST /api/v1/search`. Errors are JSON: `{"error": {"code", "message",
"request_id"}}`. Admin routes need `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>`."""


def _tidy_openapi(app: FastAPI) -> None:
    """Document validation errors as the 400s they are (not FastAPI's 422), and the search
    body that the route parses itself."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        search_schema = SearchQuery.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(search_schema.pop("$defs", {}))
        components["SearchQuery"] = search_schema
        error_ref = {"$ref": "#/components/schemas/ErrorBody"}
        components.setdefault("ErrorBody", ErrorBody.model_json_schema())
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault(
                        "400",
                        {
                            "description": "Invalid request (the message names the field)",
                            "content": {"application/json": {"schema": error_ref}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def operation_id(route: APIRoute) -> str:
    """The route function's name as a method name: `search_by_fingerprint` reads
    `searchByFingerprint` in the OpenAPI document and in generated clients."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def create_app(settings: GatewaySettings) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # gRPC aio channels belong to the loop they are made on: open them in the server's loop.
        app.state.gateway = Gateway(settings, metrics)
        endpoint = (
            serve_metrics(metrics.registry, settings.host, settings.metrics_port)
            if settings.metrics_port is not None
            else None
        )
        app.state.metrics_endpoint = endpoint
        yield
        if endpoint is not None:
            endpoint.close()
        await app.state.gateway.close()

    app = FastAPI(
        title="photosearch",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
        generate_unique_id_function=operation_id,
        # /docs is served by routes/assets.py, from the gateway itself.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(
        BodyLimit,
        json_bytes=settings.max_json_bytes,
        upload_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
        search_bytes=settings.max_search_bytes,
        search_path=SEARCH_PATH,
    )
    origins = settings.allowed_origins()
    if origins:
        # Inside RequestContext, so that preflight answers carry request ids and headers.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id", "retry-after", "server-timing"],
            max_age=600,
        )
    app.add_middleware(RequestContext, metrics=metrics, share_resources=bool(origins))
    for module in (
        system,
        public,
        items,
        fallback,
        admin,
        admin_catalog,
        review,
        imports,
        sign_in,
        assets,
    ):
        app.include_router(module.router)
    _tidy_openapi(app)
    return app


def app_from_environment() -> FastAPI:
    """The app as a uvicorn factory, for several worker processes in one container
    (`uvicorn --factory --workers N`, measured in bench/gateway.py): each worker reads the
    settings itself. Counters, caches and rate limits are then per worker; more replicas
    (pods) scale the gateway without that."""
    from photosearch.common.entrypoint import load_settings
    from photosearch.common.logging import configure_logging
    from photosearch_gateway.http_protocol import BoundedHttpToolsProtocol

    settings = load_settings(GatewaySettings, "gateway")
    configure_logging("gateway", settings.log_level, settings.log_format)
    BoundedHttpToolsProtocol.max_head_bytes = settings.max_header_bytes
    return create_app(settings)
