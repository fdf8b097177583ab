"""How much an answer can be trusted: one band per answer, from its candidates' scores.

- MATCH: the top candidate is verified (its regions stand far above this query's
  chance level), or its score is not low and leads the next by a clear margin (a clear
  lead among poor candidates is no match);
- NO_MATCH: neither, and its score is low: nothing in the catalog is close;
- POSSIBLE: the rest: the item is likely among the candidates, the user should look.

The thresholds are chosen on held-out items so that MATCH answers are right at least
98 % of the time and NO_MATCH turns away few answers that were right (bench/quality.py
--folds; docs/quality.md has each band's precision and coverage per dataset)."""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from photosearch_search.domain import Band, Candidate


@dataclass(frozen=True)
class BandSettings:
    # Chosen on every dataset's items (bench/quality.py; docs/quality.md).
    verified_above: float = 0.7  # verification that counts as verified
    match_margin: float = 0.1  # lead over the next candidate's score that is a match
    possible_above: float = 0.63  # lower top scores are no match (unless verified)


def is_verified(candidate: Candidate, settings: BandSettings) -> bool:
    return candidate.verification > 0 and candidate.verification >= settings.verified_above


def mark_verified(candidates: Sequence[Candidate], settings: BandSettings) -> list[Candidate]:
    return [replace(c, verified=True) if is_verified(c, settings) else c for c in candidates]


def band_of(candidates: Sequence[Candidate], settings: BandSettings) -> Band:
    """The band of a ranked answer (best first, before it is cut to k). With a single
    candidate there is no lead to measure: only verification makes it a match."""
    if not candidates:
        return Band.NO_MATCH
    top = candidates[0]
    lead = top.score - candidates[1].score if len(candidates) > 1 else 0.0
    if is_verified(top, settings) or (
        lead >= settings.match_margin and top.score >= settings.possible_above
    ):
        return Band.MATCH
    if top.score >= settings.possible_above:
        return Band.POSSIBLE
    return Band.NO_MATCH
