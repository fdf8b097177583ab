"""Import jobs inside catalog, against a real S3 endpoint (moto in server mode) and a
local web server: items and photos land once, each failure is kept with its reason, and
a job left half-way by a stopped catalog is finished by the next one."""

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from photosearch.catalog.v1 import catalog_pb2
from photosearch_catalog.cli import importer as cli
from tests.support.catalog import Catalog, image_bytes, make_settings, start_catalog
from tests.support.object_store import PhotoServer, local_s3, put_objects


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with local_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def web() -> Iterator[PhotoServer]:
    with PhotoServer() as server:
        yield server


async def importer(database_url: str, nats_url: str, s3: str, **more):
    settings = make_settings(
        database_url,
        nats_url,
        s3_endpoint_url=s3,
        import_allow_private_urls=True,  # the test servers are on loopback
        import_url_timeout_seconds=1.0,
        **more,
    )
    return await start_catalog(settings)


async def finished(catalog: Catalog, job_id: str, timeout: float = 30.0) -> catalog_pb2.ImportJob:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await catalog.stub.GetImport(catalog_pb2.GetImportRequest(id=job_id))
        if job.state == "done":
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.2)


async def items_named(catalog: Catalog) -> dict[str, int]:
    reply = await catalog.stub.ListItems(catalog_pb2.ListItemsRequest(page_size=100))
    return {item.name: item.image_count for item in reply.items}


async def test_an_s3_prefix_imports_each_folder_as_an_item(
    database_url, nats_server, s3: str
) -> None:
    put_objects(
        s3,
        "shop",
        {
            "figures/boba_fett/front.jpg": image_bytes(1, "JPEG"),
            "figures/boba_fett/back.jpg": image_bytes(2, "JPEG"),
            "figures/r2-d2.png": image_bytes(3),
            "figures/notes.txt": b"not a photo",
            "figures/broken.jpg": b"\xff\xd8 not really a jpeg",
            "elsewhere/c-3po.png": image_bytes(4),
        },
    )
    service, catalog = await importer(database_url, nats_server.url, s3)
    try:
        job = await catalog.stub.StartImport(
            catalog_pb2.StartImportRequest(source="s3://shop/figures", started_by="admin-token")
        )
        assert (job.state, job.total, job.source) == ("running", 4, "s3://shop/figures")
        job = await finished(catalog, job.id)
        assert (job.total, job.done, job.failed) == (4, 3, 1)
        (failure,) = job.failures
        assert failure.location == "s3://shop/figures/broken.jpg"
        assert "not a supported image" in failure.reason or "truncated" in failure.reason
        assert await items_named(catalog) == {"Boba Fett": 2, "R2-D2": 1}
        # Again: nothing new, every entry done.
        again = await catalog.stub.StartImport(
            catalog_pb2.StartImportRequest(source="s3://shop/figures")
        )
        again = await finished(catalog, again.id)
        assert (again.done, again.failed) == (3, 1)
        assert await items_named(catalog) == {"Boba Fett": 2, "R2-D2": 1}
        listed = await catalog.stub.ListImports(catalog_pb2.ListImportsRequest())
        assert [j.id for j in listed.jobs] == [again.id, job.id]
        assert [f.location for f in listed.jobs[1].failures] == [failure.location]
        for bad, message in [
            ("s3://missing-bucket/x", "cannot list"),
            ("s3://shop/nothing-here", "no photo under"),
            ("https://shop/figures", "not s3://bucket/prefix"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await catalog.stub.StartImport(catalog_pb2.StartImportRequest(source=bad))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert message in refused.value.details()
    finally:
        await service.stop()


async def test_a_csv_of_urls_keeps_each_failure_with_its_reason(
    database_url, nats_server, s3: str, web: PhotoServer
) -> None:
    web.photos.update({"1.jpg": image_bytes(11, "JPEG"), "2.jpg": image_bytes(12, "JPEG")})
    rows = [
        f"Boba Fett,Star Wars,{web.url}/photo/1.jpg",
        f"Boba Fett,Star Wars,{web.url}/hop/2/2.jpg",
        f"R2-D2,Star Wars,{web.url}/missing",
        f"C-3PO,Star Wars,{web.url}/loop",
        f"Ewok,Star Wars,{web.url}/slow",
        f"Jawa,Star Wars,{web.url}/huge",
    ]
    data = ("name,series,image_url\n" + "\n".join(rows) + "\n").encode()
    service, catalog = await importer(database_url, nats_server.url, s3)
    try:
        job = await catalog.stub.StartImport(catalog_pb2.StartImportRequest(csv=data))
        job = await finished(catalog, job.id)
        assert (job.total, job.done, job.failed) == (6, 2, 4)
        reasons = {f.location.rsplit("/", 1)[-1]: f.reason for f in job.failures}
        assert reasons["missing"] == "HTTP 404"
        assert reasons["loop"] == "more than 3 redirects"
        assert reasons["slow"] == "no answer within 1 s"
        assert "more than" in reasons["huge"]
        assert await items_named(catalog) == {"Boba Fett": 2}
    finally:
        await service.stop()


async def test_a_job_left_half_way_is_finished_after_a_restart(
    database_url, nats_server, s3: str, web: PhotoServer
) -> None:
    """A catalog stops part-way through a job (one photo at a time, each 0.3 s to fetch);
    the next one finishes it, and no photo lands twice."""
    web.photos.update({f"r{n}.jpg": image_bytes(40 + n, "JPEG") for n in range(8)})
    lines = "".join(f"Figure {n},{web.url}/pace/r{n}.jpg\n" for n in range(8))
    data = ("name,image_url\n" + lines).encode()
    first, catalog = await importer(database_url, nats_server.url, s3, import_concurrency=1)
    job = await catalog.stub.StartImport(catalog_pb2.StartImportRequest(csv=data))
    deadline = asyncio.get_running_loop().time() + 20
    while (await catalog.stub.GetImport(catalog_pb2.GetImportRequest(id=job.id))).done < 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await first.stop()
    second, catalog = await importer(database_url, nats_server.url, s3)
    try:
        halfway = await catalog.stub.GetImport(catalog_pb2.GetImportRequest(id=job.id))
        assert halfway.state == "running" and 2 <= halfway.done < 8, halfway
        done = await finished(catalog, job.id)
        assert (done.total, done.done, done.failed) == (8, 8, 0)
        assert await items_named(catalog) == {f"Figure {n}": 1 for n in range(8)}
    finally:
        await second.stop()


async def test_the_importer_command_starts_a_job_and_follows_it(
    database_url, nats_server, s3: str, web: PhotoServer, tmp_path, capsys
) -> None:
    web.photos.update({"cli1.jpg": image_bytes(61, "JPEG"), "cli2.jpg": image_bytes(62, "JPEG")})
    sheet = tmp_path / "photos.csv"
    sheet.write_text(
        "name,image_url\n"
        f"Tie Fighter,{web.url}/photo/cli1.jpg\n"
        f"X-Wing,{web.url}/photo/cli2.jpg\n"
        f"Millennium Falcon,{web.url}/missing\n"
    )
    put_objects(s3, "cli", {"ships/y-wing.png": image_bytes(63)})
    service, catalog = await importer(database_url, nats_server.url, s3)
    try:
        address = catalog.service.address
        assert await asyncio.to_thread(cli.main, [str(sheet), "--catalog", address]) == 1
        out = capsys.readouterr().out
        assert "done: 2 imported, 1 failed" in out
        assert f"failed: {web.url}/missing: HTTP 404" in out
        assert await asyncio.to_thread(cli.main, ["s3://cli/ships", "--catalog", address]) == 0
        assert "done: 1 imported, 0 failed" in capsys.readouterr().out
        assert await items_named(catalog) == {"Tie Fighter": 1, "X-Wing": 1, "Y-Wing": 1}
    finally:
        await service.stop()
