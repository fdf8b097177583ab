"""What an import job fetches and how it names items: URLs checked before every hop
(https only, no private address unless allowed), bounded redirects, time and size; a CSV
of photo URLs and an S3 listing planned into entries."""

import re
from collections.abc import Iterator

import httpx
import pytest

from photosearch.common.errors import InvalidArgument
from photosearch_catalog.import_fetch import (
    FetchFailed,
    FetchLimits,
    S3Location,
    check_target,
    fetch_url,
)
from photosearch_catalog.import_jobs import plan_csv, plan_s3
from tests.support.object_store import PhotoServer

PUBLIC_ONLY = FetchLimits(max_bytes=1000)
LOCAL = FetchLimits(max_bytes=1000, timeout_seconds=1.0, max_redirects=3, allow_private=True)


@pytest.fixture(scope="module")
def server() -> Iterator[PhotoServer]:
    with PhotoServer() as running:
        running.photos["a.jpg"] = b"photo-bytes"
        running.photos["big.jpg"] = b"x" * 2000
        yield running


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/a.jpg", "not an http(s) URL"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("http://example.com/a.jpg", "only https"),
        ("https://127.0.0.1/a.jpg", "private address"),
        ("https://localhost/a.jpg", "private address"),
        ("https://[::1]/a.jpg", "private address"),
        ("https://169.254.169.254/latest/meta-data/", "private address"),
        ("https://10.1.2.3/a.jpg", "private address"),
        ("https://192.168.0.1/a.jpg", "private address"),
    ],
)
async def test_targets_an_import_must_not_reach_are_refused(url: str, reason: str) -> None:
    with pytest.raises(FetchFailed, match=re.escape(reason)):
        await check_target(url, PUBLIC_ONLY)


async def test_a_public_https_address_is_allowed_and_private_ones_when_asked() -> None:
    await check_target("https://8.8.8.8/a.jpg", PUBLIC_ONLY)
    await check_target("http://127.0.0.1:9/a.jpg", LOCAL)


async def test_fetching_bounds_redirects_time_and_size(server: PhotoServer) -> None:
    async with httpx.AsyncClient() as http:
        assert await fetch_url(http, f"{server.url}/photo/a.jpg", LOCAL) == b"photo-bytes"
        assert await fetch_url(http, f"{server.url}/hop/3/a.jpg", LOCAL) == b"photo-bytes"
        failures = {
            "/hop/4/a.jpg": "more than 3 redirects",
            "/loop": "more than 3 redirects",
            "/missing": "HTTP 404",
            "/photo/big.jpg": "2000 bytes, more than 1000",
            "/huge": "more than 1000",
            "/slow": "no answer within 1 s",
        }
        for path, reason in failures.items():
            with pytest.raises(FetchFailed, match=reason):
                await fetch_url(http, server.url + path, LOCAL)
        # Every hop is checked: a public-only fetch never reaches the local server.
        before = len(server.requests)
        with pytest.raises(FetchFailed, match="only https"):
            await fetch_url(http, f"{server.url}/photo/a.jpg", PUBLIC_ONLY)
        assert len(server.requests) == before


def test_a_csv_of_photo_urls_becomes_entries_grouped_by_item() -> None:
    data = (
        b"name,series,year,image_url,url\n"
        b"Boba Fett,Star Wars,1979,https://x.example/1.jpg,https://shop.example/boba\n"
        b"Boba Fett,Star Wars,1979,https://x.example/2.jpg,\n"
        b"R2-D2,Star Wars,,https://x.example/3.jpg,\n"
        b"Nobody,,,,\n"
    )
    entries = plan_csv(data)
    assert [(e.import_key, e.location) for e in entries] == [
        ("urls:Boba Fett", "https://x.example/1.jpg"),
        ("urls:Boba Fett", "https://x.example/2.jpg"),
        ("urls:R2-D2", "https://x.example/3.jpg"),
    ]
    first = entries[0].fields
    assert (first.series, first.year) == ("Star Wars", 1979)
    assert first.external_refs[0].url == "https://shop.example/boba"  # url stays the item's link
    # Without image_url, the url column names the photos.
    only_url = plan_csv(b"name,url\nC-3PO,https://x.example/4.jpg\n")
    assert only_url[0].location == "https://x.example/4.jpg"
    assert only_url[0].fields.external_refs == ()
    for bad, message in [
        (b"name,file\nA,a.jpg\n", "needs an 'image_url'"),
        (b"name,image_url\n,https://x.example/1.jpg\n", "line 2: every row needs a name"),
        (b"name,image_url\nA,\n", "names no photo URL"),
        (b"\xff\xfe", "not UTF-8"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            plan_csv(bad)


def test_an_s3_prefix_is_planned_like_a_folder() -> None:
    where = S3Location.parse("s3://shop/figures")
    assert where == S3Location("shop", "figures/")
    entries = plan_s3(
        where,
        ["figures/boba_fett/front.jpg", "figures/boba_fett/back.jpg", "figures/r2-d2.png"],
    )
    assert [(e.import_key, e.fields.name) for e in entries] == [
        ("s3:shop/figures/boba_fett/", "Boba Fett"),
        ("s3:shop/figures/boba_fett/", "Boba Fett"),
        ("s3:shop/figures/r2-d2.png", "R2-D2"),
    ]
    assert entries[2].location == "s3://shop/figures/r2-d2.png"
    with pytest.raises(ValueError, match="not s3://bucket/prefix"):
        S3Location.parse("https://shop/figures")
