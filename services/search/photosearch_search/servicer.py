"""Protobuf <-> domain translation for the search service."""

from photosearch.search.v1 import search_pb2_grpc


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    pass
