"""Everything search would weigh for each query photo, computed once with the services'
own code (the embedder's fingerprints and local graph, search's codebook, region ranking
and matcher), so that any scoring rule, re-ranking depth and band can then be tried on
it in milliseconds (tools/quality/tuning.py), and the rule search ships scores it the
same way (`answer`, through search's own `rescore` and `band_of`).

Per query: the fingerprint score of every item of its dataset; the region index's item
ranking (photo as taken alone, and with the turned views); and, for the union of the
fingerprint's top GLOBAL_DEPTH and the region index's top REGION_DEPTH items, the
matcher's evidence view by view."""

import hashlib
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from photosearch.common.local import LocalGrid
from photosearch_search.bands import BandSettings, band_of, mark_verified
from photosearch_search.codebook import Bag, Codebook, CodebookRule, bag_of, rank_photos, train
from photosearch_search.domain import Band, Candidate
from photosearch_search.rerank import (
    Evidence,
    RerankSettings,
    StoredPhoto,
    item_evidence,
    query_views,
    rescore,
)
from tools.quality.datasets import Dataset
from tools.quality.extract import Extractor
from tools.quality.offline import Technique, prepare
from tools.quality.rerank import global_item_scores
from tools.quality.service_rerank import QUERY_ROTATIONS, ServiceDescriptors

GLOBAL_DEPTH = 50  # fingerprint candidates whose evidence is gathered
REGION_DEPTH = 20  # region-index candidates whose evidence is gathered
VERSION = 1  # of what is cached: bump when the gathering changes


@dataclass(frozen=True)
class QueryEvidence:
    dataset: str
    key: str
    view: str
    truth: str
    scores: dict[str, float]  # fingerprint score of every item of the dataset
    regions_upright: tuple[str, ...]  # region index's items, the photo as taken alone
    regions_turned: tuple[str, ...]  # ... with the turned views too
    evidence: dict[str, tuple[Evidence, ...]]  # per gathered item, one per view

    @cached_property
    def ranked(self) -> list[Candidate]:
        """The fingerprint's ranking of every item (ties by item id, as search), once
        per instance (a frozen dataclass still has the __dict__ this writes to)."""
        ordered = sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return [Candidate(i, "", s) for i, s in ordered]

    def staged(self, items: Sequence[str], turned_below: int) -> tuple[dict[str, Evidence], bool]:
        """Search's staged evidence of `items` (rerank.staged_evidence): the turned
        views count only when the photo as taken verifies none with `turned_below`.
        Also whether the turned views were needed."""
        upright = {i: self.evidence[i][0] for i in items if i in self.evidence}
        best = max((e.inliers for e in upright.values()), default=0)
        if turned_below and best >= turned_below:
            return upright, False
        key = lambda e: (e.inliers, e.matches)  # noqa: E731
        return {i: max(self.evidence[i], key=key) for i in upright}, True


@dataclass(frozen=True)
class Params:
    """Everything search's answer depends on beyond the descriptors (SEARCH_* settings)."""

    rerank: RerankSettings = field(default_factory=RerankSettings)
    regions: int = 10  # SEARCH_REGION_CANDIDATES
    bands: BandSettings = field(default_factory=BandSettings)

    def env(self) -> dict[str, str]:
        """The search settings that give these parameters."""
        r, b = self.rerank, self.bands
        return {
            "SEARCH_RERANK_TOP_K": str(r.top_k),
            "SEARCH_RERANK_WEIGHT": repr(r.weight),
            "SEARCH_RERANK_MARGIN": repr(r.margin),
            "SEARCH_RERANK_MIN_INLIERS": str(r.min_inliers),
            "SEARCH_REGION_CANDIDATES": str(self.regions),
            "SEARCH_BAND_VERIFIED_ABOVE": repr(b.verified_above),
            "SEARCH_BAND_MATCH_MARGIN": repr(b.match_margin),
            "SEARCH_BAND_POSSIBLE_ABOVE": repr(b.possible_above),
        }


@dataclass(frozen=True)
class Answer:
    ranking: list[Candidate]  # every item, best first
    band: Band
    matched: frozenset[str]  # items re-ranking saw (fingerprint's top k and the regions')


def answer(q: QueryEvidence, params: Params, without: frozenset[str] = frozenset()) -> Answer:
    """Search's answer to this query with these parameters; `without` leaves items out
    of the catalog (for a photo of something the catalog does not hold)."""
    candidates = [c for c in q.ranked if c.item_id not in without]
    top = [c.item_id for c in candidates[: params.rerank.top_k]]
    upright = _regions_beyond(q.regions_upright, top, without, params.regions)
    evidence, turned = q.staged(top + upright, params.rerank.turned_views_below)
    regions = upright
    if turned:  # the page sends the turned views too, and search looks again
        regions = _regions_beyond(q.regions_turned, top, without, params.regions)
        evidence, _ = q.staged(top + regions, 0)
    marked = {i for i in regions}
    candidates = [replace(c, from_regions=True) if c.item_id in marked else c for c in candidates]
    rescored = mark_verified(rescore(candidates, evidence, params.rerank), params.bands)
    return Answer(rescored, band_of(rescored, params.bands), frozenset(top + regions))


def _regions_beyond(
    ranking: Sequence[str], top: Sequence[str], without: frozenset[str], limit: int
) -> list[str]:
    known = set(top)
    return [i for i in ranking if i not in known and i not in without][:limit]


def gather(
    extractor: Extractor,
    service: ServiceDescriptors,
    datasets: Sequence[Dataset],
    cache_dir: Path,
    rule: CodebookRule | None = None,
) -> list[QueryEvidence]:
    """Every query of every dataset; the codebook is trained on the catalog photos of
    all of them, as the mesh's search trains it on the whole catalog (cached)."""
    rule = rule or CodebookRule()
    key = json.dumps(
        [
            VERSION,
            service.tag,
            repr(rule),
            [[p.key for p in d.catalog + d.queries] for d in datasets],
        ]
    )
    path = cache_dir / f"evidence-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pickle"
    if path.is_file():
        loaded: list[QueryEvidence] = pickle.loads(path.read_bytes())
        return loaded
    grids = {d.name: service.grids(d.catalog, 0) for d in datasets}
    book = train([g for d in datasets for g in grids[d.name]], rule, version=1)
    out: list[QueryEvidence] = []
    for dataset in datasets:
        out += _dataset_evidence(extractor, service, dataset, grids[dataset.name], book, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def _dataset_evidence(
    extractor: Extractor,
    service: ServiceDescriptors,
    dataset: Dataset,
    catalog: list[LocalGrid],
    book: Codebook,
    cache_dir: Path,
) -> list[QueryEvidence]:
    prepared = prepare(extractor, dataset, Technique("global"), cache_dir)
    vectors = np.concatenate([f.fingerprints[:1] for f in prepared.catalog])
    owners = [p.item for p in dataset.catalog]
    photos: dict[str, list[StoredPhoto]] = {}
    bags: dict[str, Bag] = {}
    for number, (photo, grid) in enumerate(zip(dataset.catalog, catalog, strict=True)):
        photos.setdefault(photo.item, []).append(StoredPhoto(str(number), grid))
        bags[str(number)] = bag_of(book, grid)
    views = [service.grids(dataset.queries, angle) for angle in QUERY_ROTATIONS]
    out = []
    for number, (photo, feats) in enumerate(zip(dataset.queries, prepared.queries, strict=True)):
        scores = global_item_scores(feats[0].fingerprints[0], vectors, owners)
        query = query_views([per_angle[number] for per_angle in views])
        query_bags = [bag_of(book, view) for view in query]
        upright = _region_items(query_bags[:1], bags, owners)
        turned = _region_items(query_bags, bags, owners)
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        wanted = list(dict.fromkeys(ranked[:GLOBAL_DEPTH] + upright + turned))
        evidence = {i: [] for i in wanted}  # type: dict[str, list[Evidence]]
        for view in query:
            found = item_evidence([view], {i: photos[i] for i in wanted}, RerankSettings().match)
            for item in wanted:
                evidence[item].append(found[item])
        out.append(
            QueryEvidence(
                dataset.name,
                photo.key,
                photo.view,
                photo.item,
                scores,
                tuple(upright),
                tuple(turned),
                {i: tuple(e) for i, e in evidence.items()},
            )
        )
    return out


def _region_items(views: Sequence[Bag], bags: dict[str, Bag], owners: Sequence[str]) -> list[str]:
    """The region index's items for these views, best photo per item (search's SQL)."""
    items: list[str] = []
    for key, _ in rank_photos(views, bags, REGION_DEPTH * 3):
        owner = owners[int(key)]
        if owner not in items:
            items.append(owner)
    return items[:REGION_DEPTH]
