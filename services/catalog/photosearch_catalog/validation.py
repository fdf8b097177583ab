"""Checks and normalisation of what callers send, with messages a person can act on."""

import dataclasses
import uuid
from collections.abc import Sequence

from photosearch.common.errors import InvalidArgument
from photosearch_catalog.domain import ITEM_FIELD_NAMES, ExternalRef, ItemFields

MAX_NAME = 500
MAX_TEXT = 200
MAX_TAGS = 100
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_VALUE = 2000
MAX_EXTERNAL_REFS = 50
MAX_IMPORT_KEY = 500


def parse_id(value: str, what: str) -> str:
    """A canonical uuid string, or InvalidArgument naming the bad value."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise InvalidArgument(f"{what} {shown!r} is not a valid id (a UUID)") from None


def _text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    value = " ".join(value.split())
    if len(value) > limit:
        raise InvalidArgument(f"{what} is {len(value)} characters long; the limit is {limit}")
    return value


def normalise_fields(fields: ItemFields) -> ItemFields:
    """Whitespace collapsed, tags de-duplicated; InvalidArgument for what cannot be kept."""
    name = _text(fields.name, "name", MAX_NAME)
    if not name:
        raise InvalidArgument("an item needs a name")
    if not 0 <= fields.year <= 9999:
        raise InvalidArgument(f"year must be between 1 and 9999 (0 = unknown); got {fields.year}")
    tags: list[str] = []
    for tag in fields.tags:
        cleaned = _text(tag, "a tag", 100)
        if cleaned and cleaned not in tags:
            tags.append(cleaned)
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"an item has at most {MAX_TAGS} tags; got {len(tags)}")
    attributes: dict[str, str] = {}
    for key, value in fields.attributes.items():
        cleaned_key = _text(key, "an attribute name", 100)
        if not cleaned_key:
            raise InvalidArgument("attribute names must not be empty")
        if len(value) > MAX_ATTRIBUTE_VALUE:
            raise InvalidArgument(
                f"attribute {cleaned_key!r} is {len(value)} characters; "
                f"the limit is {MAX_ATTRIBUTE_VALUE}"
            )
        attributes[cleaned_key] = value.strip()
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidArgument(f"an item has at most {MAX_ATTRIBUTES} attributes")
    refs = tuple(_external_ref(ref) for ref in fields.external_refs)
    if len(refs) > MAX_EXTERNAL_REFS:
        raise InvalidArgument(f"an item has at most {MAX_EXTERNAL_REFS} external references")
    return ItemFields(
        name=name,
        series=_text(fields.series, "series"),
        maker=_text(fields.maker, "maker"),
        year=fields.year,
        variant=_text(fields.variant, "variant"),
        tags=tuple(tags),
        attributes=attributes,
        external_refs=refs,
    )


def _external_ref(ref: ExternalRef) -> ExternalRef:
    cleaned = ExternalRef(
        _text(ref.system, "an external reference's system"),
        _text(ref.ref, "an external reference", 1000),
        ref.url.strip(),
    )
    if not (cleaned.ref or cleaned.url):
        raise InvalidArgument("an external reference needs a ref or a url")
    if cleaned.url and not cleaned.url.startswith(("http://", "https://")):
        raise InvalidArgument(f"external reference url {cleaned.url!r} must start with http(s)://")
    return cleaned


def apply_mask(current: ItemFields, update: ItemFields, paths: Sequence[str]) -> ItemFields:
    """`current` with the fields named in `paths` taken from `update` (empty = all of them)."""
    unknown = [p for p in paths if p not in ITEM_FIELD_NAMES]
    if unknown:
        raise InvalidArgument(
            f"update_mask names unknown fields {unknown}; allowed: {', '.join(ITEM_FIELD_NAMES)}"
        )
    chosen = paths or ITEM_FIELD_NAMES
    return dataclasses.replace(current, **{p: getattr(update, p) for p in chosen})


def check_import_key(key: str) -> str:
    key = key.strip()
    if not key:
        raise InvalidArgument("an import record needs an import_key")
    if len(key) > MAX_IMPORT_KEY:
        raise InvalidArgument(f"import_key is longer than {MAX_IMPORT_KEY} characters")
    return key
