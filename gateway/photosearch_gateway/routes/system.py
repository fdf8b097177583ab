"""Probes and metrics."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import JSONResponse

from photosearch_gateway.schemas import Health, Readiness
from photosearch_gateway.state import Gateway, gateway

router = APIRouter(tags=["operations"])
REQUIRED = ("catalog", "search")


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process answers (liveness)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(gw: Annotated[Gateway, Depends(gateway)]) -> JSONResponse:
    """Catalog and search report SERVING (readiness). Embedder and fallback are reported
    but not required: embedders may scale to zero, and the web fallback is optional."""
    services = await gw.health()
    ready = all(services[name] == "SERVING" for name in REQUIRED)
    body = Readiness(ready=ready, services=services).model_dump()
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(gw: Annotated[Gateway, Depends(gateway)]) -> Response:
    if gw.settings.metrics_port is not None:  # served on its own port, never the public one
        raise HTTPException(404, "Not Found")
    return Response(gw.metrics.render(), media_type=gw.metrics.content_type)
