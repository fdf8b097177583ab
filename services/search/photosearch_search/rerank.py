"""Re-ranking of the global search's top candidates by verified local matches.

An item's evidence is its best (inliers, matches) over the query's views (the photo as
taken, then turned views) and its photos; its new score is the global score plus
weight * min(inliers, saturate) / saturate, so a verified match outranks any candidate
without one while the global score still orders candidates with equal evidence.
Candidates beyond the top k keep their global score. Plain numpy, no I/O: search runs
it in a worker thread."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from photosearch.common.errors import InvalidArgument
from photosearch.common.local import SALIENT_CELLS, LocalGrid, keep_salient
from photosearch_search.domain import Candidate
from photosearch_search.matching import MatchSettings, match_pairs

# The photo as taken plus three turns: more views are never needed, and each costs a
# full pass over the candidates.
MAX_QUERY_VIEWS = 4


@dataclass(frozen=True)
class RerankSettings:
    top_k: int = 20  # candidates of the global search that get re-ranked
    saturate: int = 30  # inliers that count as full evidence
    weight: float = 1.0  # score added for full evidence
    match: MatchSettings = field(default_factory=MatchSettings)

    @property
    def max_score(self) -> float:
        return 1.0 + self.weight


@dataclass(frozen=True)
class StoredPhoto:
    """A catalog image's stored local descriptors."""

    image_id: str
    grid: LocalGrid


def query_views(views: Sequence[LocalGrid]) -> list[LocalGrid]:
    """The views a query may send, each reduced to its most salient cells (full grids;
    a client's own selection is kept as it is, but may not be larger)."""
    if len(views) > MAX_QUERY_VIEWS:
        raise InvalidArgument(
            f"local: at most {MAX_QUERY_VIEWS} views (the photo as taken, then turned views), "
            f"got {len(views)}"
        )
    out = []
    for number, view in enumerate(views):
        reduced = keep_salient(view)
        if len(reduced) > SALIENT_CELLS:
            raise InvalidArgument(
                f"local[{number}]: a selection of cells may hold at most {SALIENT_CELLS} cells, "
                f"got {len(reduced)}: send the full grid or its {SALIENT_CELLS} most salient cells"
            )
        out.append(reduced)
    return out


@dataclass(frozen=True)
class Evidence:
    matches: int = 0
    inliers: int = 0
    image_id: str = ""


def item_evidence(
    views: Sequence[LocalGrid],
    photos: Mapping[str, Sequence[StoredPhoto]],
    settings: MatchSettings,
) -> dict[str, Evidence]:
    """Best evidence of each item over views x its photos (first best in view, photo
    order, as the per-pair reference walks them)."""
    flat = [(item, photo) for item, item_photos in photos.items() for photo in item_photos]
    pairs = match_pairs(views, [photo.grid for _, photo in flat], settings)
    evidence = {item: Evidence() for item in photos}
    for v in range(len(views)):
        for j, (item, photo) in enumerate(flat):
            seen = evidence[item]
            inliers, matches = int(pairs.inliers[v, j]), int(pairs.matches[v, j])
            if (inliers, matches) > (seen.inliers, seen.matches):
                evidence[item] = Evidence(matches, inliers, photo.image_id)
    return evidence


def top_photos(
    candidates: Sequence[Candidate],
    photos: Mapping[str, Sequence[StoredPhoto]],
    settings: RerankSettings,
) -> dict[str, Sequence[StoredPhoto]]:
    """The stored photos of the top k candidates that have any, in candidate order."""
    top = candidates[: settings.top_k]
    return {c.item_id: photos[c.item_id] for c in top if photos.get(c.item_id)}


def rescore(
    candidates: Sequence[Candidate], evidence: Mapping[str, Evidence], settings: RerankSettings
) -> list[Candidate]:
    """All candidates (global order, best first) with the top k re-scored by their
    evidence (items without any keep their global score); best first."""
    out = []
    for number, candidate in enumerate(candidates):
        found = evidence.get(candidate.item_id)
        if number >= settings.top_k or found is None:
            out.append(replace(candidate, global_score=candidate.score))
            continue
        bonus = settings.weight * min(found.inliers, settings.saturate) / settings.saturate
        out.append(
            Candidate(
                candidate.item_id,
                found.image_id if found.inliers > 0 else candidate.image_id,
                candidate.score + bonus,
                global_score=candidate.score,
                inliers=found.inliers,
            )
        )
    return sorted(out, key=lambda c: (-c.score, c.item_id))


def rerank(
    candidates: Sequence[Candidate],
    views: Sequence[LocalGrid],
    photos: Mapping[str, Sequence[StoredPhoto]],
    settings: RerankSettings,
) -> list[Candidate]:
    """`rescore` with the evidence of the top candidates' stored photos, in one go."""
    wanted = top_photos(candidates, photos, settings)
    evidence = item_evidence(views, wanted, settings.match) if views and wanted else {}
    return rescore(candidates, evidence, settings)
