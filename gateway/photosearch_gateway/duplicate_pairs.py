"""One duplicate list from two sources: search's fingerprint pairs (what the model sees)
and catalog's copies (what the pixels say, whatever the model: PDQ hash matches, and the
copies its pixel check found past PDQ). A pair found by both is one entry naming every
signal; hash matches come first (closest first), then pixel matches (most similar first),
then the fingerprint-only pairs by similarity."""

from dataclasses import dataclass
from typing import Literal

from photosearch.catalog.v1 import catalog_pb2 as catalog_pb
from photosearch.search.v1 import search_pb2 as search_pb

Signal = Literal["fingerprint", "copy_hash", "copy_pixels"]


@dataclass
class MergedPair:
    item_id_a: str
    image_id_a: str
    item_id_b: str
    image_id_b: str
    score: float | None = None
    copy: catalog_pb.CopyPair | None = None

    @property
    def signals(self) -> list[Signal]:
        found: list[Signal] = []
        if self.score is not None:
            found.append("fingerprint")
        if self.copy is not None:
            found.append("copy_pixels" if self.by_pixels else "copy_hash")
        return found

    @property
    def by_pixels(self) -> bool:
        return self.copy is not None and self.copy.found_by == "pixels"


def merge(
    fingerprints: list[search_pb.DuplicatePair], copies: list[catalog_pb.CopyPair], limit: int
) -> list[MergedPair]:
    pairs: dict[frozenset[str], MergedPair] = {}
    for c in copies:
        pairs[frozenset((c.image_id_a, c.image_id_b))] = MergedPair(
            c.item_id_a, c.image_id_a, c.item_id_b, c.image_id_b, copy=c
        )
    for p in fingerprints:
        key = frozenset((p.image_id_a, p.image_id_b))
        if key in pairs:
            pairs[key].score = p.score
        else:
            pairs[key] = MergedPair(p.item_id_a, p.image_id_a, p.item_id_b, p.image_id_b, p.score)
    ordered = sorted(pairs.values(), key=_order)
    return ordered[:limit]


def _order(m: MergedPair) -> tuple[bool, bool, float, float, str]:
    if m.copy is None:
        closeness = 0.0
    else:
        closeness = -m.copy.similarity if m.by_pixels else float(m.copy.distance)
    score = -(m.score if m.score is not None else -1.0)
    return (m.copy is None, m.by_pixels, closeness, score, min(m.image_id_a, m.image_id_b))
