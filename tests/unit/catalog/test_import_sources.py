"""Import plans from a folder, a metadata CSV and a dataset manifest (no server)."""

from pathlib import Path

import pytest

from photosearch.common.errors import InvalidArgument
from photosearch_catalog.cli.import_sources import plan_source
from photosearch_catalog.cli.plan import Exclusions
from photosearch_catalog.domain import ExternalRef, ImageRole

DATASETS = Path("/work/shared/datasets")


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_files_are_items_and_sub_folders_group_photos(tmp_path) -> None:
    touch(tmp_path / "LOCH-JP001_dark_magician_pscr.jpg")
    touch(tmp_path / "blue_eyes_white_dragon.PNG")
    for n in range(3):
        touch(tmp_path / "kuriboh_ur" / f"IMG_{n}.jpg")
    touch(tmp_path / "kuriboh_ur" / "back" / "IMG_9.heic")  # a deeper folder: its own item
    touch(tmp_path / "notes.txt")
    touch(tmp_path / ".hidden" / "a.jpg")
    touch(tmp_path / "no_image_available.png")
    touch(tmp_path / "placeholders" / "missing.jpg")

    exclusions = Exclusions(["no_image*", "placeholders/*"])
    plan = plan_source(tmp_path, exclusions)
    by_key = {item.import_key: item for item in plan.items}
    assert set(by_key) == {
        "folder:LOCH-JP001_dark_magician_pscr.jpg",
        "folder:blue_eyes_white_dragon.PNG",
        "folder:kuriboh_ur/",
        "folder:kuriboh_ur/back/",
    }
    dark = by_key["folder:LOCH-JP001_dark_magician_pscr.jpg"].fields
    assert (dark.name, dark.variant, dark.attributes) == (
        "Dark Magician",
        "PScR",
        {"set_code": "LOCH-JP001"},
    )
    kuriboh = by_key["folder:kuriboh_ur/"]
    assert (kuriboh.fields.name, kuriboh.fields.variant) == ("Kuriboh", "UR")
    assert [i.path.name for i in kuriboh.images] == ["IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg"]
    assert plan.image_count == 6
    assert sorted(plan.skipped) == [
        ("no_image_available.png", "on the exclusion list"),
        ("notes.txt", "not an image file (by its extension)"),
        ("placeholders/missing.jpg", "on the exclusion list"),
    ]


def test_exclusion_files_take_patterns_and_hashes(tmp_path) -> None:
    listing = tmp_path / "exclude.txt"
    sha = "ab" * 32
    listing.write_text(f"# placeholders\nPlaceholder*.jpg\n{sha.upper()}  # the grey one\n\n")
    exclusions = Exclusions.from_files([listing])
    assert exclusions.excludes_path("cards/placeholder-2.JPG")
    assert not exclusions.excludes_path("cards/dark_magician.jpg")
    assert exclusions.excludes_hash(sha)


def test_metadata_csv_joins_rows_to_files(tmp_path) -> None:
    for name in ("a1.jpg", "a2.jpg", "LOB-005_blue_eyes_ur.jpg", "skip.jpg"):
        touch(tmp_path / "img" / name)
    (tmp_path / "items.csv").write_text(
        "file,key,name,series,maker,year,variant,tags,role,ref_system,ref,url,museum_no\n"
        "img/a1.jpg,print-1,The Wave,Prints,Hokusai,1831,,ukiyo-e;wave,,museum,P-1,"
        "https://example.org/p1,M.123\n"
        "img/a2.jpg,print-1,ignored,,,,,,uploaded,,,,\n"
        "img/LOB-005_blue_eyes_ur.jpg,,,,,,,,,,,,\n"
        "img/missing.jpg,,Gone,,,,,,,,,,\n"
        "img/skip.jpg,,Placeholder,,,,,,,,,,\n"
    )
    plan = plan_source(tmp_path / "items.csv", Exclusions(["skip.jpg"]))
    wave, blue = plan.items
    assert wave.import_key == "csv:print-1"
    assert wave.fields.name == "The Wave" and wave.fields.year == 1831
    assert wave.fields.tags == ("ukiyo-e", "wave")
    assert wave.fields.attributes == {"museum_no": "M.123"}
    assert wave.fields.external_refs == (ExternalRef("museum", "P-1", "https://example.org/p1"),)
    assert [i.role for i in wave.images] == [ImageRole.OFFICIAL, ImageRole.UPLOADED]
    # Without a name the file-name rules apply.
    assert (blue.fields.name, blue.fields.variant) == ("Blue Eyes", "UR")
    assert blue.fields.attributes == {"set_code": "LOB-005"}
    assert blue.import_key == "csv:img/LOB-005_blue_eyes_ur.jpg"
    reasons = dict(plan.skipped)
    assert reasons["img/skip.jpg"] == "on the exclusion list"
    assert reasons["img/missing.jpg"].startswith("file not found")


def test_csv_mistakes_are_reported_with_the_line(tmp_path) -> None:
    touch(tmp_path / "a.jpg")
    (tmp_path / "bad.csv").write_text("file,year\na.jpg,nineteen\n")
    with pytest.raises(InvalidArgument, match="line 2: year 'nineteen'"):
        plan_source(tmp_path / "bad.csv", Exclusions())
    (tmp_path / "nofile.csv").write_text("name\nx\n")
    with pytest.raises(InvalidArgument, match="'file' column"):
        plan_source(tmp_path / "nofile.csv", Exclusions())


def test_dataset_manifests_import_their_catalog_rows() -> None:
    plan = plan_source(DATASETS / "lego_minifigs_kaggle_subset", Exclusions())
    assert len(plan.items) == 9 and plan.image_count == 9  # query rows are left out
    first = plan.items[0]
    assert first.import_key == "manifest:lego_minifigs_kaggle_subset/harry-potter/0001"
    assert first.fields.name == "Harry Potter"
    assert first.fields.tags == ("lego_minifigs_kaggle_subset",)
    assert first.fields.attributes["lego_set"] == "Aragog's Lair (75950)"

    near = plan_source(DATASETS / "near_duplicates" / "manifest.csv", Exclusions())
    assert len(near.items) == 11  # group_id names the item there
    assert all(len(item.images) == 1 for item in near.items)
