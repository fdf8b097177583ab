"""Datasets in the shared `manifest.csv` format: catalog images and query photos of
the same items. Files are read in place; nothing is copied."""

import csv
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@dataclass(frozen=True)
class Photo:
    path: Path
    item: str  # the dataset's own item id (item_id, or group_id in near_duplicates)
    view: str  # view, camera or transform (view, or variant in near_duplicates)
    role: str  # "catalog" or "query"

    @property
    def key(self) -> str:
        return self.path.as_posix()


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    catalog: list[Photo]
    queries: list[Photo]

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.csv"

    @property
    def catalog_items(self) -> list[str]:
        return sorted({p.item for p in self.catalog})


def load_dataset(root: Path) -> Dataset:
    """Read `root/manifest.csv`; rows whose file is missing are an error (the data is
    shared and must be whole for numbers to be comparable)."""
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{root} has no manifest.csv")
    catalog: list[Photo] = []
    queries: list[Photo] = []
    with manifest.open(newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            item = (row.get("item_id") or row.get("group_id") or "").strip()
            view = (row.get("view") or row.get("variant") or "").strip()
            role = row["role"].strip()
            path = root / row["file"].strip()
            if not path.is_file():
                raise FileNotFoundError(f"{manifest}: {row['file']} does not exist")
            photo = Photo(path, item, view, role)
            if role == "catalog":
                catalog.append(photo)
            elif role == "query":
                queries.append(photo)
            else:
                raise ValueError(f"{manifest}: role {role!r} is neither catalog nor query")
    known = {p.item for p in catalog}
    orphans = sorted({q.item for q in queries} - known)
    if orphans:
        raise ValueError(f"{manifest}: queries of items with no catalog image: {orphans[:5]}")
    return Dataset(root.name, root, catalog, queries)


def discover(root: Path = DEFAULT_ROOT) -> list[Path]:
    """Every folder below `root` that holds a manifest.csv, by name."""
    return sorted(p.parent for p in root.glob("*/manifest.csv"))
