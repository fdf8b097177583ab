"""Opaque page tokens for ListItems: the (name, id) keyset position plus a
fingerprint of the filters, so a token is only ever used with its own query."""

import base64
import binascii
import hashlib
import json

from photosearch.common.errors import InvalidArgument
from photosearch_catalog.domain import ItemFilter


def _fingerprint(filters: ItemFilter) -> str:
    body = json.dumps([filters.query, filters.series, filters.maker, filters.tag])
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def encode_token(name: str, item_id: str, filters: ItemFilter) -> str:
    body = json.dumps({"n": name, "i": item_id, "f": _fingerprint(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_token(token: str, filters: ItemFilter) -> tuple[str, str] | None:
    """The (name, id) to continue after, or None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        name, item_id, fingerprint = str(body["n"]), str(body["i"]), str(body["f"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidArgument("page_token is not one this service issued") from None
    if fingerprint != _fingerprint(filters):
        raise InvalidArgument(
            "page_token belongs to a different query or filters: start again without it"
        )
    return name, item_id
