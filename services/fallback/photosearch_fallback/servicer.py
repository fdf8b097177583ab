"""Protobuf <-> domain translation for the fallback service."""

from photosearch.fallback.v1 import fallback_pb2_grpc


class FallbackServicer(fallback_pb2_grpc.FallbackServiceServicer):
    pass
