"""Read a real /metrics endpoint the way Prometheus does (its text format parser)."""

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample `name` whose labels include `labels`, or None when there is none."""
        for sample in self.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
        return None

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample `name` whose labels include `labels` (0 without one)."""
        return sum(
            float(s.value)
            for s in self.samples
            if s.name == name and labels.items() <= s.labels.items()
        )


async def scrape(url: str) -> Scrape:
    async with httpx.AsyncClient(timeout=5) as client:
        reply = await client.get(url)
    reply.raise_for_status()
    assert reply.headers["content-type"].startswith("text/plain")
    return Scrape(reply.text)
