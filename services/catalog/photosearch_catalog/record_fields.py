"""An item's fields as an import names them: from a file or folder name (naming.py), or
from a CSV row's columns. Shared by the command-line importer and catalog's import jobs."""

import re
from pathlib import Path

from photosearch.common.errors import InvalidArgument
from photosearch_catalog.domain import ExternalRef, ItemFields
from photosearch_catalog.naming import label_from_stem

CSV_FIELDS = {
    "file", "key", "name", "series", "maker", "year", "variant", "tags", "role",
    "ref_system", "ref", "url", "image_url",
}  # fmt: skip


def label_fields(stem: str) -> ItemFields:
    label = label_from_stem(stem)
    attributes = {"set_code": label.set_code} if label.set_code else {}
    return ItemFields(name=label.name, variant=label.variant, attributes=attributes)


def _year(value: str, where: str) -> int:
    value = value.strip()
    if not value:
        return 0
    try:
        return int(float(value))
    except ValueError:
        raise InvalidArgument(f"{where}: year {value!r} is not a number") from None


def row_fields(row: dict[str, str], where: str) -> ItemFields:
    def text(column: str) -> str:
        return (row.get(column) or "").strip()

    name = text("name")
    label = label_from_stem(Path(text("file")).stem)
    refs = (
        (ExternalRef(text("ref_system"), text("ref"), text("url")),)
        if text("ref") or text("url")
        else ()
    )
    attributes = {
        k.strip(): (v or "").strip()
        for k, v in row.items()
        if k and k.strip() not in CSV_FIELDS and (v or "").strip()
    }
    if not name and label.set_code:
        attributes.setdefault("set_code", label.set_code)
    return ItemFields(
        name=name or label.name,
        series=text("series"),
        maker=text("maker"),
        year=_year(text("year"), where),
        variant=text("variant") or ("" if name else label.variant),
        tags=tuple(t.strip() for t in re.split(r"[;|]", text("tags")) if t.strip()),
        attributes=attributes,
        external_refs=refs,
    )
