"""Protobuf <-> domain translation for the catalog service."""

from photosearch.catalog.v1 import catalog_pb2_grpc


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    pass
