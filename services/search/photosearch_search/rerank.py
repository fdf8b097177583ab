"""Re-ranking of a query's candidates by verified local matches, and their scoring.

An item's evidence is its best (inliers, matches) over the query's views (the photo as
taken, then turned views) and its photos. How many inliers mean "this is the item"
depends on the pair: flat, textured covers gather a handful by chance, while figures,
toys and turntable objects gather dozens, because their regions look alike and lie
close together. So an item's inliers are compared with this query's chance level, the
best inliers among the *other* candidates (nearly all of them are wrong):

    verification = max(0, ln(1 + inliers) - ln(1 + best other inliers) - margin)
    score        = global score + weight * verification

counting only items with at least `min_inliers`. A cover whose 60 inliers stand over
the others' 10 is verified; a figure with 40 where the next has 35 is not, and keeps
its fingerprint order. The turned views are matched only when the photo as taken
verifies no candidate well (fewer than `turned_views_below` inliers): most photos are
upright, and that saves two thirds of the work for them. Plain numpy, no I/O: search
runs it in a worker thread.

The rule's numbers are chosen on held-out items of every dataset at once
(bench/quality.py --folds; docs/quality.md)."""

import math
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
    # Chosen on held-out items of every dataset (docs/quality.md, "Cross-validated").
    top_k: int = 10  # the fingerprint's nearest items that get re-ranked
    weight: float = 0.3  # score added per unit of verification
    margin: float = 0.0  # log-ratio over the chance level that still counts as none
    min_inliers: int = 4  # fewer verified matches count as none
    # Turned query views are matched only when the first view's best candidate has fewer
    # inliers than this (0 = always).
    turned_views_below: int = 15
    match: MatchSettings = field(default_factory=MatchSettings)

    @property
    def max_score(self) -> float:
        """A cosine of 1 plus the largest verification 250 cells can give."""
        return 1.0 + self.weight * math.log1p(SALIENT_CELLS)


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


def matched_photos(
    candidates: Sequence[Candidate], photos: Mapping[str, Sequence[StoredPhoto]]
) -> dict[str, Sequence[StoredPhoto]]:
    """The stored photos of the candidates that have any, in candidate order."""
    return {c.item_id: photos[c.item_id] for c in candidates if photos.get(c.item_id)}


def verifications(evidence: Mapping[str, Evidence], settings: RerankSettings) -> dict[str, float]:
    """Each item's verification: its counted inliers over the best other item's, on a
    log scale, less the margin (0 at least)."""
    levels = {
        item: math.log1p(e.inliers if e.inliers >= settings.min_inliers else 0)
        for item, e in evidence.items()
    }
    ranked = sorted(levels.values(), reverse=True)
    out = {}
    for item, level in levels.items():
        # The chance level: the best of the others (the second best, for the best one).
        if len(ranked) == 1:
            chance = 0.0
        elif level == ranked[0]:
            chance = ranked[1]
        else:
            chance = ranked[0]
        out[item] = max(0.0, level - chance - settings.margin)
    return out


def rescore(
    candidates: Sequence[Candidate], evidence: Mapping[str, Evidence], settings: RerankSettings
) -> list[Candidate]:
    """Every candidate, its evidence turned into a score (items without any keep their
    global score); best first, ties by item id."""
    verified = verifications(evidence, settings)
    out = []
    for candidate in candidates:
        found = evidence.get(candidate.item_id)
        if found is None:
            out.append(replace(candidate, global_score=candidate.score))
            continue
        verification = verified[candidate.item_id]
        counted = found.inliers >= max(settings.min_inliers, 1)
        out.append(
            replace(
                candidate,
                image_id=found.image_id if counted else candidate.image_id,
                score=candidate.score + settings.weight * verification,
                global_score=candidate.score,
                inliers=found.inliers,
                verification=verification,
            )
        )
    return sorted(out, key=lambda c: (-c.score, c.item_id))


def rerank(
    candidates: Sequence[Candidate],
    views: Sequence[LocalGrid],
    photos: Mapping[str, Sequence[StoredPhoto]],
    settings: RerankSettings,
) -> list[Candidate]:
    """`rescore` with the evidence of the top k candidates' stored photos, in one go."""
    wanted = matched_photos(candidates[: settings.top_k], photos)
    evidence = staged_evidence(views, wanted, settings) if views and wanted else {}
    return rescore(candidates, evidence, settings)
