"""Import jobs, run inside catalog: from an S3 prefix or a CSV of photo URLs, with their
progress (docs/catalog.md, "Import jobs")."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from photosearch_gateway.admin_schemas import ImportJob, ImportJobList
from photosearch_gateway.auth import Caller, require_admin
from photosearch_gateway.errors import ApiError
from photosearch_gateway.routes import PathId, errors
from photosearch_gateway.state import Gateway, gateway

router = APIRouter(prefix="/api/v1/admin/imports", tags=["admin"], responses=errors(401, 403))
GatewayDep = Annotated[Gateway, Depends(gateway)]
AdminDep = Annotated[Caller, Depends(require_admin)]
MAX_CSV_BYTES = 16 * 1024 * 1024


@router.post("", response_model=ImportJob, status_code=202, responses=errors(413))
async def start_import(
    gw: GatewayDep,
    admin: AdminDep,
    source: Annotated[str, Form(max_length=1000, description="s3://bucket/prefix")] = "",
    csv: Annotated[
        UploadFile | None, File(description="A CSV with image_url (or url) and name columns")
    ] = None,
    update_existing: Annotated[bool, Form()] = False,
) -> ImportJob:
    """Start an import job: catalog lists the photos now and fetches them in the background;
    poll `GET /api/v1/admin/imports/{id}` for its progress."""
    data = await csv.read(MAX_CSV_BYTES + 1) if csv is not None else b""
    if len(data) > MAX_CSV_BYTES:
        raise ApiError(413, "too_large", f"the CSV is larger than {MAX_CSV_BYTES} bytes")
    job = await gw.catalog.start_import(source.strip(), data, update_existing, admin.identity)
    return ImportJob.from_proto(job)


@router.get("", response_model=ImportJobList)
async def list_imports(
    gw: GatewayDep, admin: AdminDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> ImportJobList:
    return ImportJobList(
        jobs=[ImportJob.from_proto(j) for j in await gw.catalog.list_imports(limit)]
    )


@router.get("/{import_id}", response_model=ImportJob, responses=errors(404))
async def get_import(import_id: PathId, gw: GatewayDep, admin: AdminDep) -> ImportJob:
    return ImportJob.from_proto(await gw.catalog.get_import(import_id))
