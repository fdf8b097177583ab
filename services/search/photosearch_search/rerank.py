"""Re-ranking of the global search's top candidates by verified local matches.

An item's evidence is its best (inliers, matches) over the query's views (the photo as
taken, then turned views) and its photos; with at least `min_inliers` its new score is
the global score plus weight * min(inliers, saturate) / saturate. Candidates beyond the
top k keep their global score. The turned views are matched only when the photo as taken
verifies no candidate well (fewer than `turned_views_below` inliers): most photos are
upright, and that saves two thirds of the work for them. Plain numpy, no I/O: search
runs it in a worker thread.

The rule and its numbers were chosen on three real datasets side by side
(tools/quality/rerank_sweep.py; docs/quality.md): a small weight lets verified matches
settle close calls without overruling a clear fingerprint answer, and the floor keeps
chance alignments (RANSAC finds a few inliers between unrelated photos) from counting."""

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
    weight: float = 0.15  # score added for full evidence
    min_inliers: int = 10  # fewer verified matches count as none
    # Turned query views are matched only when the first view's best candidate has fewer
    # inliers than this (0 = always).
    turned_views_below: int = 15
    match: MatchSettings = field(default_factory=MatchSettings)

    @property
    def max_score(self) -> float:
        return 1.0 + self.weight


@dataclass(frozen=True)
class StoredPhoto:
    """A catalog image's stored local descriptors."""

    image_id: str
    grid: LocalGrid


def check_view_count(count: int) -> None:
    if count > MAX_QUERY_VIEWS:
        raise InvalidArgument(
            f"local: at most {MAX_QUERY_VIEWS} views (the photo as taken, then turned views), "
            f"got {count}"
        )


def query_views(views: Sequence[LocalGrid]) -> list[LocalGrid]:
    """The views a query may send, each reduced to its most salient cells (full grids;
    a client's own selection is kept as it is, but may not be larger)."""
    check_view_count(len(views))
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


def staged_evidence(
    views: Sequence[LocalGrid],
    photos: Mapping[str, Sequence[StoredPhoto]],
    settings: RerankSettings,
) -> dict[str, Evidence]:
    """`item_evidence` over every view, except that the turned views (all but the first)
    are skipped when the first already verifies a candidate with `turned_views_below`
    inliers. Same result as matching all views whenever they are matched."""
    first = item_evidence(views[:1], photos, settings.match)
    best = max((e.inliers for e in first.values()), default=0)
    if len(views) == 1 or (settings.turned_views_below and best >= settings.turned_views_below):
        return first
    turned = item_evidence(views[1:], photos, settings.match)
    return {
        item: max(first[item], turned[item], key=lambda e: (e.inliers, e.matches)) for item in first
    }


def wants_turned_views(
    views: Sequence[LocalGrid], evidence: Mapping[str, Evidence], settings: RerankSettings
) -> bool:
    """Only the photo as taken was sent and it verified no candidate well: matching
    turned views would follow, so the client should send them (staged_evidence's rule)."""
    best = max((e.inliers for e in evidence.values()), default=0)
    below = settings.turned_views_below
    return len(views) == 1 and below > 0 and best < below


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
        counted = found.inliers if found.inliers >= settings.min_inliers else 0
        bonus = settings.weight * min(counted, settings.saturate) / settings.saturate
        out.append(
            Candidate(
                candidate.item_id,
                found.image_id if counted > 0 else candidate.image_id,
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
    evidence = staged_evidence(views, wanted, settings) if views and wanted else {}
    return rescore(candidates, evidence, settings)
