"""Import jobs, run inside catalog: from an S3 prefix or a CSV of photo URLs, with their
progress (docs/catalog.md, "Import jobs")."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile
from pydantic import BaseModel, Field

from photosearch.catalog.v1 import catalog_pb2 as catalog_pb
from photosearch_gateway.auth import Caller, require_admin
from photosearch_gateway.errors import ApiError
from photosearch_gateway.routes import errors
from photosearch_gateway.schemas import utc_time
from photosearch_gateway.state import Gateway, gateway

router = APIRouter(prefix="/api/v1/admin/imports", tags=["admin"], responses=errors(401, 403))
GatewayDep = Annotated[Gateway, Depends(gateway)]
AdminDep = Annotated[Caller, Depends(require_admin)]
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_CSV_BYTES = 16 * 1024 * 1024


class ImportFailure(BaseModel):
    location: str = Field(description='"https://..." or "s3://bucket/key"')
    reason: str


class ImportJob(BaseModel):
    id: str
    source: str
    state: str = Field(description='"running" or "done"')
    total: int = Field(description="Photos to import.")
    done: int
    failed: int
    progress: float = Field(description="(done + failed) / total")
    failures: list[ImportFailure] = Field(description="The first 50, in the job's order.")
    started_by: str
    created_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_proto(cls, job: catalog_pb.ImportJob) -> "ImportJob":
        return cls(
            id=job.id,
            source=job.source,
            state=job.state,
            total=job.total,
            done=job.done,
            failed=job.failed,
            progress=round((job.done + job.failed) / job.total, 4) if job.total else 1.0,
            failures=[ImportFailure(location=f.location, reason=f.reason) for f in job.failures],
            started_by=job.started_by,
            created_at=utc_time(job.created_at),
            finished_at=utc_time(job.finished_at) if job.HasField("finished_at") else None,
        )


class ImportJobList(BaseModel):
    jobs: list[ImportJob] = Field(description="Newest first.")


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
async def get_import(import_id: Id, gw: GatewayDep, admin: AdminDep) -> ImportJob:
    return ImportJob.from_proto(await gw.catalog.get_import(import_id))
