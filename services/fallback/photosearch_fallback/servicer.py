"""Protobuf <-> domain translation for the fallback service."""

from typing import Any

import grpc

from photosearch.fallback.v1 import fallback_pb2, fallback_pb2_grpc
from photosearch_fallback.leads import Lead, LeadType
from photosearch_fallback.service import WebDetectService

_LEAD_TYPES = {t: fallback_pb2.LeadType.Value(f"LEAD_TYPE_{t.value}") for t in LeadType}


def lead_to_proto(lead: Lead) -> fallback_pb2.Lead:
    return fallback_pb2.Lead(
        type=_LEAD_TYPES[lead.type],
        label=lead.label,
        url=lead.url,
        title=lead.title,
        score=lead.score,
        image_url=lead.image_url,
    )


class FallbackServicer(fallback_pb2_grpc.FallbackServiceServicer):
    def __init__(self, service: WebDetectService) -> None:
        self._service = service

    async def WebDetect(
        self, request: fallback_pb2.WebDetectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> fallback_pb2.WebDetectResponse:
        result = await self._service.web_detect(
            request.image, request.max_results, context.time_remaining()
        )
        return fallback_pb2.WebDetectResponse(
            best_guess_labels=result.best_guess_labels,
            leads=[lead_to_proto(lead) for lead in result.leads],
        )
