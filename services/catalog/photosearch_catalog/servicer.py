"""Protobuf <-> domain translation for the catalog service; the logic lives in
service.py, bulk_import.py and admin_settings.py, the conversions in convert.py."""

from collections.abc import AsyncIterator
from typing import Any

import grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch_catalog.admin_settings import AdminSettingsService
from photosearch_catalog.bulk_import import ImportService
from photosearch_catalog.convert import (
    copy_report_to_proto,
    fields_from_proto,
    image_refs_to_proto,
    image_to_proto,
    import_job_to_proto,
    import_record_from_proto,
    import_summary_to_proto,
    item_to_proto,
    role_from_proto,
    settings_to_proto,
)
from photosearch_catalog.domain import Contributor, ImageRole, ImportRecord, ItemFilter
from photosearch_catalog.import_jobs import ImportJobService
from photosearch_catalog.service import CatalogService

Context = grpc.aio.ServicerContext[Any, Any]


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(
        self,
        catalog: CatalogService,
        imports: ImportService,
        settings: AdminSettingsService,
        jobs: ImportJobService,
    ) -> None:
        self.catalog = catalog
        self.imports = imports
        self.settings = settings
        self.jobs = jobs

    async def CreateItem(
        self, request: catalog_pb2.CreateItemRequest, context: Context
    ) -> catalog_pb2.Item:
        item = await self.catalog.create_item(
            fields_from_proto(request.item),
            request.item.import_key,
            Contributor(request.added_by, request.pending),
        )
        return item_to_proto(item)

    async def GetItem(
        self, request: catalog_pb2.GetItemRequest, context: Context
    ) -> catalog_pb2.Item:
        return item_to_proto(await self.catalog.get_item(request.id))

    async def BatchGetItems(
        self, request: catalog_pb2.BatchGetItemsRequest, context: Context
    ) -> catalog_pb2.BatchGetItemsResponse:
        items = await self.catalog.batch_get_items(list(request.ids))
        return catalog_pb2.BatchGetItemsResponse(items=[item_to_proto(i) for i in items])

    async def UpdateItem(
        self, request: catalog_pb2.UpdateItemRequest, context: Context
    ) -> catalog_pb2.Item:
        item = await self.catalog.update_item(
            request.item.id, fields_from_proto(request.item), list(request.update_mask.paths)
        )
        return item_to_proto(item)

    async def DeleteItem(
        self, request: catalog_pb2.DeleteItemRequest, context: Context
    ) -> catalog_pb2.DeleteItemResponse:
        await self.catalog.delete_item(request.id)
        return catalog_pb2.DeleteItemResponse()

    async def ListItems(
        self, request: catalog_pb2.ListItemsRequest, context: Context
    ) -> catalog_pb2.ListItemsResponse:
        filters = ItemFilter(request.query, request.series, request.maker, request.tag)
        page = await self.catalog.list_items(
            filters, request.page_size, request.page_token, request.include_pending
        )
        return catalog_pb2.ListItemsResponse(
            items=[item_to_proto(i) for i in page.items], next_page_token=page.next_page_token
        )

    async def AddImage(
        self, request: catalog_pb2.AddImageRequest, context: Context
    ) -> catalog_pb2.AddImageResponse:
        role = role_from_proto(request.role, ImageRole.UPLOADED)
        image, created = await self.catalog.add_image(
            request.item_id,
            role,
            request.data,
            request.filename,
            Contributor(request.added_by, request.pending),
        )
        return catalog_pb2.AddImageResponse(image=image_to_proto(image), created=created)

    async def GetImage(
        self, request: catalog_pb2.GetImageRequest, context: Context
    ) -> catalog_pb2.GetImageResponse:
        image, data, content_type = await self.catalog.get_image(request.id, request.thumbnail_size)
        return catalog_pb2.GetImageResponse(
            image=image_to_proto(image), data=data, content_type=content_type
        )

    async def DeleteImage(
        self, request: catalog_pb2.DeleteImageRequest, context: Context
    ) -> catalog_pb2.DeleteImageResponse:
        await self.catalog.delete_image(request.id)
        return catalog_pb2.DeleteImageResponse()

    async def ListImages(
        self, request: catalog_pb2.ListImagesRequest, context: Context
    ) -> catalog_pb2.ListImagesResponse:
        images = await self.catalog.list_images(request.item_id, request.include_pending)
        return catalog_pb2.ListImagesResponse(images=[image_to_proto(i) for i in images])

    async def ListContributions(
        self, request: catalog_pb2.ListContributionsRequest, context: Context
    ) -> catalog_pb2.ListContributionsResponse:
        found, total = await self.catalog.list_contributions(request.page_size)
        return catalog_pb2.ListContributionsResponse(
            contributions=[
                catalog_pb2.Contribution(
                    item=item_to_proto(c.item),
                    pending_images=[image_to_proto(i) for i in c.pending_images],
                )
                for c in found
            ],
            total=total,
        )

    async def ApproveItem(
        self, request: catalog_pb2.ApproveItemRequest, context: Context
    ) -> catalog_pb2.Item:
        return item_to_proto(await self.catalog.approve_item(request.id))

    async def ApproveImage(
        self, request: catalog_pb2.ApproveImageRequest, context: Context
    ) -> catalog_pb2.Image:
        return image_to_proto(await self.catalog.approve_image(request.id))

    async def StreamImageRefs(
        self, request: catalog_pb2.StreamImageRefsRequest, context: Context
    ) -> AsyncIterator[catalog_pb2.ImageRefBatch]:
        async for refs in self.catalog.stream_image_refs(request.batch_size):
            yield image_refs_to_proto(refs)

    async def CountImages(
        self, request: catalog_pb2.CountImagesRequest, context: Context
    ) -> catalog_pb2.CountImagesResponse:
        return catalog_pb2.CountImagesResponse(count=await self.catalog.count_images())

    async def FindCopies(
        self, request: catalog_pb2.FindCopiesRequest, context: Context
    ) -> catalog_pb2.FindCopiesResponse:
        report = await self.catalog.find_copies(request.max_distance, request.limit)
        return copy_report_to_proto(report)

    async def ImportItems(
        self, request_iterator: AsyncIterator[catalog_pb2.ImportRecord], context: Context
    ) -> catalog_pb2.ImportSummary:
        async def records() -> AsyncIterator[ImportRecord]:
            async for record in request_iterator:
                yield import_record_from_proto(record)

        return import_summary_to_proto(await self.imports.import_records(records()))

    async def StartImport(
        self, request: catalog_pb2.StartImportRequest, context: Context
    ) -> catalog_pb2.ImportJob:
        job = await self.jobs.start(
            request.source, request.csv, request.update_existing, request.started_by
        )
        return import_job_to_proto(job)

    async def GetImport(
        self, request: catalog_pb2.GetImportRequest, context: Context
    ) -> catalog_pb2.ImportJob:
        return import_job_to_proto(await self.jobs.get(request.id))

    async def ListImports(
        self, request: catalog_pb2.ListImportsRequest, context: Context
    ) -> catalog_pb2.ListImportsResponse:
        jobs = await self.jobs.recent(request.limit)
        return catalog_pb2.ListImportsResponse(jobs=[import_job_to_proto(j) for j in jobs])

    async def GetSettings(
        self, request: catalog_pb2.GetSettingsRequest, context: Context
    ) -> catalog_pb2.Settings:
        return settings_to_proto(await self.settings.get())

    async def UpdateSettings(
        self, request: catalog_pb2.UpdateSettingsRequest, context: Context
    ) -> catalog_pb2.Settings:
        updated = await self.settings.update(
            photo_search_enabled=(
                request.photo_search_enabled if request.HasField("photo_search_enabled") else None
            ),
            web_fallback_enabled=(
                request.web_fallback_enabled if request.HasField("web_fallback_enabled") else None
            ),
            vision_api_key=(request.vision_api_key if request.HasField("vision_api_key") else None),
            clear_vision_api_key=request.clear_vision_api_key,
        )
        return settings_to_proto(updated)

    async def GetVisionCredentials(
        self, request: catalog_pb2.GetVisionCredentialsRequest, context: Context
    ) -> catalog_pb2.VisionCredentials:
        enabled, key = await self.settings.vision_credentials()
        return catalog_pb2.VisionCredentials(web_fallback_enabled=enabled, api_key=key)
