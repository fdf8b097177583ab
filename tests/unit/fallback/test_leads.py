"""Vision's web detection -> leads: every kind mapped, HTML stripped, unsafe URLs dropped."""

import json
from typing import Any

from google.cloud import vision

from photosearch_fallback.leads import (
    Lead,
    LeadType,
    leads_from_web_detection,
    safe_url,
    strip_html,
)
from tests.support.fake_vision import RICH_WEB_DETECTION


def parse(web: dict[str, Any]) -> Any:
    # The same camelCase JSON the REST transport parses.
    return vision.WebDetection.from_json(json.dumps(web))


def test_a_rich_detection_gives_every_kind_of_lead_in_order() -> None:
    result = leads_from_web_detection(parse(RICH_WEB_DETECTION))
    assert result.best_guess_labels == ["boba fett kenner 1979"]
    assert [lead.type for lead in result.leads] == [
        LeadType.BEST_GUESS,
        LeadType.WEB_ENTITY,
        LeadType.WEB_ENTITY,
        LeadType.WEB_ENTITY,
        LeadType.FULL_MATCHING_IMAGE,
        LeadType.PARTIAL_MATCHING_IMAGE,
        LeadType.PAGE_WITH_MATCHING_IMAGE,
        LeadType.PAGE_WITH_MATCHING_IMAGE,
        LeadType.VISUALLY_SIMILAR_IMAGE,
        LeadType.VISUALLY_SIMILAR_IMAGE,
    ]
    assert result.leads[0] == Lead(LeadType.BEST_GUESS, label="boba fett kenner 1979")
    entities = [(lead.label, round(lead.score, 2)) for lead in result.leads[1:4]]
    # By score, and the entity with no description is left out.
    assert entities == [("Action Figure", 1.23), ("Boba Fett", 0.91), ("Kenner", 0.38)]
    full = result.leads[4]
    assert full.url == "https://images.example.com/boba-fett-1979.jpg"  # javascript: dropped
    page = result.leads[6]
    assert page.url == "https://collectors.example.net/kenner/boba-fett"
    assert page.title == "Boba Fett 1979 Kenner & Palitoy \u2013 figure guide"
    assert page.image_url == "https://collectors.example.net/img/boba.jpg"
    assert result.leads[7].image_url == "https://shop.example.com/img/42.jpg"
    assert result.leads[7].title == "Vintage Star Wars figure"


def test_an_empty_detection_gives_no_leads() -> None:
    result = leads_from_web_detection(vision.WebDetection())
    assert result.best_guess_labels == []
    assert result.leads == []


def test_duplicates_and_blank_labels_are_dropped() -> None:
    web = {
        "bestGuessLabels": [{"label": "  "}, {"label": "dvd box"}, {"label": "dvd  box"}],
        "visuallySimilarImages": [{"url": "https://a.example/1.jpg"}] * 3,
        "pagesWithMatchingImages": [{"url": "ftp://files.example/x"}, {"url": "not a url"}],
    }
    result = leads_from_web_detection(parse(web))
    assert result.best_guess_labels == ["dvd box"]
    assert [(lead.type, lead.url) for lead in result.leads[1:]] == [
        (LeadType.VISUALLY_SIMILAR_IMAGE, "https://a.example/1.jpg")
    ]


def test_strip_html_keeps_only_the_text() -> None:
    assert strip_html("<b>Tom &amp; Jerry</b>\n<i>DVD</i>") == "Tom & Jerry DVD"
    assert strip_html("Fish &amp;amp; Chips") == "Fish & Chips"
    assert strip_html("a <script>x</script> b") == "a x b"
    assert strip_html("") == ""


def test_only_http_urls_are_kept() -> None:
    assert safe_url(" https://example.com/a.jpg ") == "https://example.com/a.jpg"
    assert safe_url("http://example.com") == "http://example.com"
    for unsafe in ("javascript:alert(1)", "data:image/png;base64,AAAA", "//example.com/x", ""):
        assert safe_url(unsafe) == "", unsafe
