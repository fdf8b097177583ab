"""Protobuf <-> domain translation for the embedder service."""

from photosearch.embedder.v1 import embedder_pb2_grpc


class EmbedderServicer(embedder_pb2_grpc.EmbedderServiceServicer):
    pass
