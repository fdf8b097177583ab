"""The review queue's memory of each pending photo's nearest catalog items."""

import time

from photosearch_gateway.review_schemas import Neighbour

# A photo's nearest items are reused this long: the page reloads the queue after every
# approval or rejection, and re-embedding every waiting photo each time would load the
# embedders that also index. Items added meanwhile show up once it expires.
NEAREST_TTL_SECONDS = 600.0
NEAREST_KEPT = 2000


class NearestCache:
    """image id -> its nearest items, bounded; only answers that were computed are kept."""

    def __init__(self) -> None:
        self._found: dict[str, tuple[float, list[Neighbour]]] = {}

    def get(self, image_id: str) -> list[Neighbour] | None:
        kept = self._found.get(image_id)
        if kept is None or kept[0] < time.monotonic():
            return None
        return kept[1]

    def put(self, image_id: str, nearest: list[Neighbour]) -> None:
        if len(self._found) >= NEAREST_KEPT:
            now = time.monotonic()
            self._found = {k: v for k, v in self._found.items() if v[0] >= now}
            while len(self._found) >= NEAREST_KEPT:
                self._found.pop(next(iter(self._found)))  # the oldest entry
        self._found[image_id] = (time.monotonic() + NEAREST_TTL_SECONDS, nearest)
