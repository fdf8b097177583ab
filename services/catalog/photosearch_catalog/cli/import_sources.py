"""What an import reads: a folder of photos named by label, a metadata CSV joined
to image files, or a dataset manifest.csv, turned into a plan of items and the
image files of each (plan.py). Nothing is read from the images here (see
importer.py). The formats are documented in docs/catalog.md."""

import csv
from pathlib import Path

from photosearch.common.errors import InvalidArgument
from photosearch_catalog.cli.plan import Exclusions, ImportPlan, PlannedImage, PlannedItem
from photosearch_catalog.domain import ImageRole, ItemFields
from photosearch_catalog.naming import title_case
from photosearch_catalog.record_fields import label_fields, row_fields

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif"}
# Manifest columns that describe one file, not the item.
_MANIFEST_FILE_COLUMNS = {
    "file", "item_id", "group_id", "view", "variant", "role", "width", "height",
    "source_path", "source_repo", "source_commit", "note", "orig_width", "orig_height",
    "nominal_view_deg",
}  # fmt: skip


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def plan_folder(root: Path, exclusions: Exclusions) -> ImportPlan:
    """Each image directly in `root` is an item named by its file name; each folder
    below that holds images is one item named by the folder, with all its photos."""
    plan = ImportPlan()
    folders: dict[Path, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if not _is_image(path):
            plan.skipped.append((relative.as_posix(), "not an image file (by its extension)"))
        elif exclusions.excludes_path(relative.as_posix()):
            plan.skipped.append((relative.as_posix(), "on the exclusion list"))
        elif path.parent == root:
            plan.items.append(
                PlannedItem(
                    f"folder:{relative.as_posix()}", label_fields(path.stem), [PlannedImage(path)]
                )
            )
        else:
            folders.setdefault(path.parent, []).append(path)
    for folder, files in sorted(folders.items()):
        key = f"folder:{folder.relative_to(root).as_posix()}/"
        plan.items.append(
            PlannedItem(key, label_fields(folder.name), [PlannedImage(f) for f in files])
        )
    return plan


def _role(value: str, where: str) -> ImageRole:
    value = value.strip().lower()
    if value in ("", "official"):
        return ImageRole.OFFICIAL
    if value == "uploaded":
        return ImageRole.UPLOADED
    raise InvalidArgument(f"{where}: role must be 'official' or 'uploaded', not {value!r}")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "file" not in [c.strip() for c in reader.fieldnames]:
            raise InvalidArgument(f"{path}: a CSV import needs a 'file' column")
        return [{(k or "").strip(): v or "" for k, v in row.items()} for row in reader]


def plan_csv(path: Path, exclusions: Exclusions, images_dir: Path | None = None) -> ImportPlan:
    """Rows of metadata joined to image files; rows sharing a `key` are one item
    (its fields from the first row), without a key each file is its own item."""
    base = images_dir or path.parent
    plan = ImportPlan()
    by_key: dict[str, PlannedItem] = {}
    for number, row in enumerate(_read_csv(path), start=2):
        where = f"{path.name} line {number}"
        relative = row["file"].strip()
        if not relative:
            plan.skipped.append((where, "no file named"))
            continue
        file = base / relative
        if exclusions.excludes_path(relative):
            plan.skipped.append((relative, "on the exclusion list"))
            continue
        if not file.is_file():
            plan.skipped.append((relative, f"file not found ({where})"))
            continue
        key = f"csv:{(row.get('key') or '').strip() or relative}"
        item = by_key.get(key)
        if item is None:
            item = by_key[key] = PlannedItem(key, row_fields(row, where))
            plan.items.append(item)
        item.images.append(PlannedImage(file, _role(row.get("role", ""), where)))
    return plan


def is_manifest(path: Path) -> bool:
    with path.open(newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    columns = {c.strip() for c in header}
    return {"file", "role"} <= columns and bool(columns & {"item_id", "group_id"})


def plan_manifest(path: Path, exclusions: Exclusions) -> ImportPlan:
    """`role=catalog` rows of a dataset manifest: one item per item_id (group_id),
    its catalog images official, tagged with the dataset's folder name."""
    dataset = path.parent.name
    plan = ImportPlan()
    by_id: dict[str, PlannedItem] = {}
    for row in _read_csv(path):
        if row.get("role", "").strip() != "catalog":
            continue
        item_id = (row.get("item_id") or row.get("group_id") or "").strip()
        relative = row["file"].strip()
        if exclusions.excludes_path(relative):
            plan.skipped.append((relative, "on the exclusion list"))
            continue
        if not (path.parent / relative).is_file():
            plan.skipped.append((relative, "file not found"))
            continue
        item = by_id.get(item_id)
        if item is None:
            extras = {
                k: v.strip()
                for k, v in row.items()
                if k not in _MANIFEST_FILE_COLUMNS and v.strip()
            }
            name = extras.pop("minifigure_name", "") or item_id
            fields = ItemFields(
                name=title_case(name) if name.isupper() else name,
                tags=(dataset,),
                attributes={"dataset": dataset, "item_id": item_id, **extras},
            )
            item = by_id[item_id] = PlannedItem(f"manifest:{dataset}/{item_id}", fields)
            plan.items.append(item)
        item.images.append(PlannedImage(path.parent / relative))
    return plan


def plan_source(
    source: Path, exclusions: Exclusions, fmt: str = "auto", images_dir: Path | None = None
) -> ImportPlan:
    """Pick the reader: a folder (or its manifest.csv when it has one) or a CSV file."""
    if not source.exists():
        raise InvalidArgument(f"{source} does not exist")
    if source.is_dir():
        manifest = source / "manifest.csv"
        if fmt == "manifest" or (fmt == "auto" and manifest.is_file() and is_manifest(manifest)):
            return plan_manifest(manifest, exclusions)
        if fmt in ("auto", "folder"):
            return plan_folder(source, exclusions)
        raise InvalidArgument(f"{source} is a folder: use --format folder or manifest")
    if fmt == "manifest" or (fmt == "auto" and is_manifest(source)):
        return plan_manifest(source, exclusions)
    if fmt in ("auto", "csv"):
        return plan_csv(source, exclusions, images_dir)
    raise InvalidArgument(f"{source} is a file: use --format csv or manifest")
