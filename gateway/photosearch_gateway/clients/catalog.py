"""Calls to the catalog service: items, images, thumbnails and admin settings."""

from photosearch.catalog.v1 import catalog_pb2 as pb
from photosearch.catalog.v1 import catalog_pb2_grpc
from photosearch_gateway.clients.base import Upstream


class CatalogClient:
    def __init__(self, upstream: Upstream, admin_timeout: float) -> None:
        self.rpc = upstream
        self.stub = catalog_pb2_grpc.CatalogServiceStub(upstream.channel)
        self.admin_timeout = admin_timeout

    async def list_items(self, request: pb.ListItemsRequest) -> pb.ListItemsResponse:
        return await self.rpc.unary("ListItems", self.stub.ListItems, request)

    async def get_item(self, item_id: str) -> pb.Item:
        return await self.rpc.unary("GetItem", self.stub.GetItem, pb.GetItemRequest(id=item_id))

    async def batch_get_items(self, ids: list[str]) -> dict[str, pb.Item]:
        if not ids:
            return {}
        reply = await self.rpc.unary(
            "BatchGetItems", self.stub.BatchGetItems, pb.BatchGetItemsRequest(ids=ids)
        )
        return {item.id: item for item in reply.items}

    async def create_item(
        self, item: pb.Item, pending: bool = False, added_by: str = ""
    ) -> pb.Item:
        request = pb.CreateItemRequest(item=item, pending=pending, added_by=added_by)
        return await self.rpc.unary("CreateItem", self.stub.CreateItem, request)

    async def update_item(self, item: pb.Item, paths: list[str]) -> pb.Item:
        request = pb.UpdateItemRequest(item=item)
        request.update_mask.paths.extend(paths)
        return await self.rpc.unary("UpdateItem", self.stub.UpdateItem, request)

    async def delete_item(self, item_id: str) -> None:
        await self.rpc.unary("DeleteItem", self.stub.DeleteItem, pb.DeleteItemRequest(id=item_id))

    async def list_images(self, item_id: str, include_pending: bool = False) -> list[pb.Image]:
        request = pb.ListImagesRequest(item_id=item_id, include_pending=include_pending)
        reply = await self.rpc.unary("ListImages", self.stub.ListImages, request)
        return list(reply.images)

    async def add_image(
        self,
        item_id: str,
        data: bytes,
        filename: str,
        role: "pb.ImageRole.ValueType",
        pending: bool = False,
        added_by: str = "",
    ) -> pb.AddImageResponse:
        request = pb.AddImageRequest(
            item_id=item_id,
            data=data,
            filename=filename,
            role=role,
            pending=pending,
            added_by=added_by,
        )
        return await self.rpc.unary("AddImage", self.stub.AddImage, request)

    async def list_contributions(self, page_size: int) -> pb.ListContributionsResponse:
        request = pb.ListContributionsRequest(page_size=page_size)
        return await self.rpc.unary("ListContributions", self.stub.ListContributions, request)

    async def approve_item(self, item_id: str) -> pb.Item:
        request = pb.ApproveItemRequest(id=item_id)
        return await self.rpc.unary("ApproveItem", self.stub.ApproveItem, request)

    async def approve_image(self, image_id: str) -> pb.Image:
        request = pb.ApproveImageRequest(id=image_id)
        return await self.rpc.unary("ApproveImage", self.stub.ApproveImage, request)

    async def get_image(self, image_id: str, thumbnail_size: int = 0) -> pb.GetImageResponse:
        request = pb.GetImageRequest(id=image_id, thumbnail_size=thumbnail_size)
        return await self.rpc.unary("GetImage", self.stub.GetImage, request)

    async def delete_image(self, image_id: str) -> None:
        await self.rpc.unary(
            "DeleteImage", self.stub.DeleteImage, pb.DeleteImageRequest(id=image_id)
        )

    async def find_copies(self, max_distance: int, limit: int) -> pb.FindCopiesResponse:
        request = pb.FindCopiesRequest(max_distance=max_distance, limit=limit)
        return await self.rpc.unary("FindCopies", self.stub.FindCopies, request, self.admin_timeout)

    async def start_import(
        self, source: str, csv: bytes, update_existing: bool, started_by: str
    ) -> pb.ImportJob:
        request = pb.StartImportRequest(
            source=source, csv=csv, update_existing=update_existing, started_by=started_by
        )
        # Listing a large bucket takes a while: the admin deadline.
        return await self.rpc.unary(
            "StartImport", self.stub.StartImport, request, self.admin_timeout
        )

    async def get_import(self, job_id: str) -> pb.ImportJob:
        return await self.rpc.unary(
            "GetImport", self.stub.GetImport, pb.GetImportRequest(id=job_id)
        )

    async def list_imports(self, limit: int) -> list[pb.ImportJob]:
        reply = await self.rpc.unary(
            "ListImports", self.stub.ListImports, pb.ListImportsRequest(limit=limit)
        )
        return list(reply.jobs)

    async def get_settings(self) -> pb.Settings:
        return await self.rpc.unary("GetSettings", self.stub.GetSettings, pb.GetSettingsRequest())

    async def update_settings(self, request: pb.UpdateSettingsRequest) -> pb.Settings:
        return await self.rpc.unary("UpdateSettings", self.stub.UpdateSettings, request)
