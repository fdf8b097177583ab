"""One band per answer: verified or clearly ahead is a match, a low top score no match."""

from photosearch_search.bands import BandSettings, band_of, mark_verified
from photosearch_search.domain import Band, Candidate

SETTINGS = BandSettings(verified_above=0.6, match_margin=0.12, possible_above=0.55)


def test_a_verified_top_candidate_is_a_match_even_when_its_lead_is_small():
    ranked = [Candidate("a", "i", 0.90, verification=0.7), Candidate("b", "j", 0.88)]
    assert band_of(ranked, SETTINGS) == Band.MATCH
    assert [c.verified for c in mark_verified(ranked, SETTINGS)] == [True, False]


def test_a_clear_lead_is_a_match_without_verification():
    assert band_of([Candidate("a", "i", 0.9), Candidate("b", "j", 0.77)], SETTINGS) == Band.MATCH
    assert band_of([Candidate("a", "i", 0.9), Candidate("b", "j", 0.79)], SETTINGS) == Band.POSSIBLE


def test_a_clear_lead_among_poor_candidates_is_no_match():
    poor = [Candidate("a", "i", 0.45), Candidate("b", "j", 0.30)]
    assert band_of(poor, SETTINGS) == Band.NO_MATCH


def test_a_low_top_score_with_nothing_verified_is_no_match():
    assert (
        band_of([Candidate("a", "i", 0.50), Candidate("b", "j", 0.49)], SETTINGS) == Band.NO_MATCH
    )
    # Some verification, but below the threshold, does not rescue it.
    weak = [Candidate("a", "i", 0.50, verification=0.3), Candidate("b", "j", 0.49)]
    assert band_of(weak, SETTINGS) == Band.NO_MATCH
    assert mark_verified(weak, SETTINGS)[0].verified is False


def test_a_single_candidate_has_no_lead_to_measure():
    assert band_of([Candidate("a", "i", 0.99)], SETTINGS) == Band.POSSIBLE
    assert band_of([Candidate("a", "i", 0.99, verification=1.0)], SETTINGS) == Band.MATCH
    assert band_of([], SETTINGS) == Band.NO_MATCH


def test_a_zero_threshold_never_verifies_a_candidate_without_verification():
    zero = BandSettings(verified_above=0.0, match_margin=1.0, possible_above=0.0)
    ranked = [Candidate("a", "i", 0.6), Candidate("b", "j", 0.59)]
    assert band_of(ranked, zero) == Band.POSSIBLE
    assert not any(c.verified for c in mark_verified(ranked, zero))
