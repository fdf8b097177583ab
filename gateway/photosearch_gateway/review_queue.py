"""The review queue: contributions waiting for an admin, each pending photo with the
catalog items it looks most like (embedded now, searched with its fingerprint), so a
duplicate is caught before it lands."""

import asyncio

from photosearch.search.v1 import search_pb2 as search_pb
from photosearch_gateway.errors import ApiError
from photosearch_gateway.photo_search import item_summaries
from photosearch_gateway.review_schemas import (
    AdminImage,
    AdminItem,
    Contribution,
    Neighbour,
    PendingImage,
    ReviewQueue,
)
from photosearch_gateway.schemas import thumbnail_url
from photosearch_gateway.state import Gateway

NEAREST = 3
# Pending photos embedded at once: the embedders also serve the index.
CONCURRENT_EMBEDS = 4


async def nearest_items(gw: Gateway, image_id: str) -> tuple[list[Neighbour], str | None]:
    """The closest catalog items, or (nothing, why) when no embedder or search could say."""
    if (kept := gw.nearest.get(image_id)) is not None:
        return kept, None
    try:
        photo = await gw.catalog.get_image(image_id)
        # The admin deadline: the first photo after an embedder starts waits for its model.
        embedded = await gw.embedder.embed(photo.data, gw.settings.admin_timeout_seconds)
        request = search_pb.SearchRequest(
            model_id=embedded.model_id, vector=embedded.embeddings[0].values, k=NEAREST
        )
        reply = await gw.search.search(request)
        items, _ = await item_summaries(gw, reply)
    except ApiError as exc:
        return [], exc.message
    nearest = [
        Neighbour(
            item=items[c.item_id],
            image_id=c.image_id,
            score=round(c.score, 6),
            thumbnail_url=thumbnail_url(c.image_id),
        )
        for c in reply.candidates
        if c.item_id in items
    ]
    gw.nearest.put(image_id, nearest)
    return nearest, None


async def review_queue(gw: Gateway, limit: int) -> ReviewQueue:
    reply = await gw.catalog.list_contributions(limit)
    gate = asyncio.Semaphore(CONCURRENT_EMBEDS)

    async def pending(image_id: str) -> tuple[list[Neighbour], str | None]:
        async with gate:
            return await nearest_items(gw, image_id)

    images = [image for c in reply.contributions for image in c.pending_images]
    found = await asyncio.gather(*(pending(image.id) for image in images))
    nearest = {image.id: result for image, result in zip(images, found, strict=True)}
    return ReviewQueue(
        total=reply.total,
        contributions=[
            Contribution(
                item=AdminItem.from_proto(c.item),
                pending_images=[
                    PendingImage(
                        image=AdminImage.from_proto(image),
                        nearest=nearest[image.id][0],
                        nearest_unavailable=nearest[image.id][1],
                    )
                    for image in c.pending_images
                ],
            )
            for c in reply.contributions
        ],
    )
