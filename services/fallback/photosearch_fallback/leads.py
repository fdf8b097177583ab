"""What Vision's web detection says about a photo, as leads the UI can render."""

import enum
import html
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit


class LeadType(enum.Enum):
    BEST_GUESS = "BEST_GUESS"
    WEB_ENTITY = "WEB_ENTITY"
    FULL_MATCHING_IMAGE = "FULL_MATCHING_IMAGE"
    PARTIAL_MATCHING_IMAGE = "PARTIAL_MATCHING_IMAGE"
    PAGE_WITH_MATCHING_IMAGE = "PAGE_WITH_MATCHING_IMAGE"
    VISUALLY_SIMILAR_IMAGE = "VISUALLY_SIMILAR_IMAGE"


@dataclass(frozen=True)
class Lead:
    type: LeadType
    label: str = ""
    url: str = ""
    title: str = ""
    score: float = 0.0
    image_url: str = ""


@dataclass(frozen=True)
class WebLeads:
    best_guess_labels: list[str]
    leads: list[Lead]


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_html(text: str) -> str:
    """Plain text of Vision's page titles, which carry <b> tags and HTML entities."""
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    # A second unescape catches double-escaped titles such as "&amp;amp;".
    return " ".join(html.unescape("".join(parser.parts)).split())


def safe_url(url: str) -> str:
    """The URL if the UI may link to it (http or https), else empty."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme in ("http", "https") and parts.netloc else ""


def _image_leads(images: Any, lead_type: LeadType) -> list[Lead]:
    leads: list[Lead] = []
    seen: set[str] = set()
    for image in images:
        url = safe_url(image.url)
        if url and url not in seen:
            seen.add(url)
            leads.append(Lead(lead_type, url=url, score=float(image.score)))
    return leads


def _page_leads(pages: Any) -> list[Lead]:
    leads: list[Lead] = []
    seen: set[str] = set()
    for page in pages:
        url = safe_url(page.url)
        if not url or url in seen:
            continue
        seen.add(url)
        images = [*page.full_matching_images, *page.partial_matching_images]
        image_url = next((u for u in (safe_url(i.url) for i in images) if u), "")
        title = strip_html(page.page_title)
        leads.append(
            Lead(
                LeadType.PAGE_WITH_MATCHING_IMAGE,
                url=url,
                title=title,
                score=float(page.score),
                image_url=image_url,
            )
        )
    return leads


def leads_from_web_detection(web: Any) -> WebLeads:
    """Map a `google.cloud.vision.WebDetection` to leads, best guesses first."""
    labels = [" ".join(g.label.split()) for g in web.best_guess_labels]
    labels = [label for label in dict.fromkeys(labels) if label]
    entities = sorted(
        (
            Lead(LeadType.WEB_ENTITY, label=" ".join(e.description.split()), score=float(e.score))
            for e in web.web_entities
            # Entities without a description are bare Knowledge Graph ids: nothing to show.
            if e.description.strip()
        ),
        key=lambda lead: -lead.score,
    )
    leads = [
        *(Lead(LeadType.BEST_GUESS, label=label) for label in labels),
        *entities,
        *_image_leads(web.full_matching_images, LeadType.FULL_MATCHING_IMAGE),
        *_image_leads(web.partial_matching_images, LeadType.PARTIAL_MATCHING_IMAGE),
        *_page_leads(web.pages_with_matching_images),
        *_image_leads(web.visually_similar_images, LeadType.VISUALLY_SIMILAR_IMAGE),
    ]
    return WebLeads(best_guess_labels=labels, leads=leads)
