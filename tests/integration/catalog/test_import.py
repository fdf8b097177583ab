"""Imports through the real gRPC API (the CLI's own code): folder, CSV and manifest
sources, idempotent re-runs, resuming after an interruption, bad files reported."""

import asyncio
import hashlib
import itertools
from pathlib import Path

import grpc
import pytest

from photosearch.catalog.v1 import catalog_pb2
from photosearch_catalog.cli import importer
from photosearch_catalog.cli.import_sources import plan_source
from photosearch_catalog.cli.plan import Exclusions
from tests.support.catalog import image_bytes
from tests.support.metrics import scrape

DATASETS = Path("/work/shared/datasets")


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def all_items(catalog) -> dict[str, catalog_pb2.Item]:
    page = await catalog.stub.ListItems(catalog_pb2.ListItemsRequest(page_size=500))
    return {item.name: item for item in page.items}


async def run(catalog, plan, exclusions=None):
    """The importer is a synchronous CLI: run it off the loop the server runs on."""
    channel, stub = importer.open_stub(catalog.service.address)
    try:
        return await asyncio.to_thread(
            importer.run_import, stub, plan, exclusions, show_progress=False, items_per_call=3
        )
    finally:
        channel.close()


async def test_folder_import_names_items_and_a_rerun_adds_nothing(catalog, tmp_path) -> None:
    placeholder = image_bytes(99)
    write(tmp_path / "LOCH-JP001_dark_magician_pscr.jpg", image_bytes(1, "JPEG"))
    write(tmp_path / "blue_eyes_white_dragon.png", image_bytes(2))
    for n in range(3):
        write(tmp_path / "kuriboh" / f"photo_{n}.jpg", image_bytes(10 + n, "JPEG"))
    write(tmp_path / "kuriboh" / "copy_of_photo_0.jpg", image_bytes(10, "JPEG"))
    write(tmp_path / "broken.jpg", image_bytes(3, "JPEG")[:200])
    write(tmp_path / "grey.png", placeholder)  # excluded by its hash
    write(tmp_path / "no_image.png", placeholder)  # excluded by its name
    exclude = tmp_path.parent / f"{tmp_path.name}-exclude.txt"
    exclude.write_text(f"no_image*\n{hashlib.sha256(placeholder).hexdigest()}\n")

    argv = [str(tmp_path), "--catalog", catalog.service.address, "--exclude", str(exclude)]
    assert await asyncio.to_thread(importer.main, [*argv, "--quiet"]) == 1  # broken.jpg failed
    items = await all_items(catalog)
    # No item for broken.jpg (its only photo was refused) nor for the placeholders.
    assert set(items) == {"Dark Magician", "Blue Eyes White Dragon", "Kuriboh"}
    assert items["Dark Magician"].variant == "PScR"
    assert items["Dark Magician"].attributes["set_code"] == "LOCH-JP001"
    assert items["Kuriboh"].image_count == 3  # the copy is the same bytes
    assert (await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())).count == 5

    exclusions = Exclusions.from_files([exclude])
    totals = await run(catalog, plan_source(tmp_path, exclusions), exclusions)
    assert (totals.items_created, totals.images_added) == (0, 0)
    assert (totals.items_existing, totals.images_existing) == (3, 6)
    assert [where for where, _ in totals.errors] == ["broken.jpg"]
    assert "truncated" in totals.errors[0][1] or "damaged" in totals.errors[0][1]
    assert (await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())).count == 5
    figures = await scrape(catalog.service.metrics_url)
    assert figures.value("catalog_import_items_total", outcome="created") == 3
    assert figures.value("catalog_import_images_total", outcome="added") == 5
    assert figures.value("catalog_import_images_total", outcome="existing") >= 6
    assert figures.value("catalog_imports_total") >= 2


async def test_an_interrupted_import_resumes_without_duplicates(catalog, tmp_path) -> None:
    for n in range(12):
        write(tmp_path / f"figure_{n:02d}" / "a.png", image_bytes(n))
        write(tmp_path / f"figure_{n:02d}" / "b.png", image_bytes(100 + n))
    plan = plan_source(tmp_path, Exclusions())
    totals = importer.Totals()
    records = importer.records_of(plan.items, Exclusions(), totals, lambda n: None)

    def cut_after_five():
        yield from itertools.islice(records, 5)
        raise RuntimeError("the connection dropped")

    channel, stub = importer.open_stub(catalog.service.address)
    with pytest.raises(grpc.RpcError):
        await asyncio.to_thread(stub.ImportItems, cut_after_five())
    channel.close()
    partial = (await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())).count
    assert partial <= 10 and partial % 2 == 0  # whole records only

    totals = await run(catalog, plan)
    assert totals.items_created + totals.items_existing == 12
    assert totals.images_added == 24 - partial
    items = await all_items(catalog)
    assert len(items) == 12 and all(item.image_count == 2 for item in items.values())


async def test_csv_import_with_metadata(catalog, tmp_path) -> None:
    write(tmp_path / "img" / "wave.jpg", image_bytes(1, "JPEG"))
    write(tmp_path / "img" / "wave_detail.jpg", image_bytes(2, "JPEG"))
    write(tmp_path / "img" / "placeholder.jpg", image_bytes(3, "JPEG"))
    (tmp_path / "prints.csv").write_text(
        "file,key,name,maker,year,tags,role,museum_no\n"
        "img/wave.jpg,p1,The Great Wave,Hokusai,1831,ukiyo-e;sea,official,M.1\n"
        "img/wave_detail.jpg,p1,,,,,uploaded,\n"
        "img/placeholder.jpg,p2,Unknown print,,,,,\n"
    )
    exclusions = Exclusions(["placeholder.jpg"])
    totals = await run(catalog, plan_source(tmp_path / "prints.csv", exclusions), exclusions)
    assert (totals.items_created, totals.images_added, totals.errors) == (1, 2, [])
    wave = (await all_items(catalog))["The Great Wave"]
    assert (wave.maker, wave.year, list(wave.tags)) == ("Hokusai", 1831, ["ukiyo-e", "sea"])
    assert wave.import_key == "csv:p1" and wave.attributes["museum_no"] == "M.1"
    images = await catalog.stub.ListImages(catalog_pb2.ListImagesRequest(item_id=wave.id))
    assert [i.role for i in images.images] == [
        catalog_pb2.IMAGE_ROLE_OFFICIAL,
        catalog_pb2.IMAGE_ROLE_UPLOADED,
    ]
    assert wave.cover_image_id == images.images[0].id

    # --update overwrites an imported item's fields; without it they are kept.
    (tmp_path / "prints.csv").write_text(
        "file,key,name,maker\nimg/wave.jpg,p1,The Great Wave off Kanagawa,Hokusai\n"
    )
    plan = plan_source(tmp_path / "prints.csv", exclusions)
    await run(catalog, plan)
    assert "The Great Wave" in await all_items(catalog)
    channel, stub = importer.open_stub(catalog.service.address)
    await asyncio.to_thread(
        importer.run_import, stub, plan, update_existing=True, show_progress=False
    )
    channel.close()
    assert "The Great Wave off Kanagawa" in await all_items(catalog)


async def test_dataset_manifest_import(catalog) -> None:
    source = DATASETS / "lego_minifigs_kaggle_subset"
    argv = [str(source), "--catalog", catalog.service.address, "--quiet"]
    assert await asyncio.to_thread(importer.main, argv) == 0
    items = await all_items(catalog)
    assert len(items) == 9 and "Harry Potter" in items
    assert all(item.image_count == 1 for item in items.values())
    assert await asyncio.to_thread(importer.main, argv) == 0  # the re-run
    assert (await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())).count == 9
