"""Where image bytes come from: catalog's GetImage (the original bytes).

Outcomes the worker tells apart: the bytes; NotFound (the image was deleted
meanwhile: nothing to do); InvalidArgument (catalog will never serve it: a
failure to report); Unavailable (try again later)."""

from typing import Protocol

import grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common.channels import open_channel
from photosearch.common.errors import InvalidArgument, NotFound, Unavailable


class ImageSource(Protocol):
    async def fetch(self, image_id: str) -> bytes:
        """The original bytes; raises NotFound, InvalidArgument or Unavailable."""

    async def close(self) -> None: ...


class CatalogImageSource:
    def __init__(self, address: str, *, timeout: float = 20.0, tls_dir: str = "") -> None:
        self.address = address
        self.timeout = timeout
        self._channel = open_channel(address, tls_dir)
        self._stub = catalog_pb2_grpc.CatalogServiceStub(self._channel)

    async def fetch(self, image_id: str) -> bytes:
        request = catalog_pb2.GetImageRequest(id=image_id, thumbnail_size=0)
        try:
            reply = await self._stub.GetImage(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"image {image_id} is not in the catalog") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(
                    f"catalog refused image {image_id}: {exc.details()}"
                ) from None
            raise Unavailable(
                f"catalog at {self.address} did not serve image {image_id}: "
                f"{code.name} {exc.details()}"
            ) from None
        data: bytes = reply.data
        return data

    async def close(self) -> None:
        await self._channel.close(None)
