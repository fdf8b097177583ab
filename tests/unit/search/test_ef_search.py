"""ef_search grows with the index: the measured points are 64 at 100k and 200 at 1M."""

import pytest

from photosearch_search.ef_search import MAX_EF_SEARCH, EfSearchPolicy

DEFAULT = EfSearchPolicy(floor=64, per_million=200)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (-1, 64),  # never analysed
        (0, 64),
        (1_000, 64),
        (100_000, 64),
        (400_000, 126),
        (1_000_000, 200),
        (4_000_000, 400),
        (100_000_000, MAX_EF_SEARCH),
    ],
)
def test_ef_search_grows_with_the_square_root_of_the_index(rows: float, expected: int) -> None:
    assert DEFAULT.for_rows(rows) == expected


def test_no_growth_keeps_the_floor() -> None:
    assert EfSearchPolicy(floor=40, per_million=0).for_rows(10_000_000) == 40
