"""Where an import job's photos come from: HTTPS URLs (bounded in time, size and
redirects, never a private address unless allowed) and S3-compatible buckets (boto3,
`S3_ENDPOINT_URL` for stores other than AWS)."""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif")


class FetchFailed(Exception):
    """This photo could not be fetched; the message says why (kept in the job)."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    timeout_seconds: float = 20.0
    max_redirects: int = 3
    # Plain http and private, loopback or link-local targets (a local test server, an
    # intranet store). Off: only https to public addresses.
    allow_private: bool = False


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_global and not ip.is_multicast


async def check_target(url: str, limits: FetchLimits) -> None:
    """Refuse what the importer must not reach: other schemes, and (unless allowed) plain
    http or a host that resolves to any non-public address (the cloud metadata service,
    the cluster's own services). Resolved again by the client: an admin-only feature, and
    the egress network policy is the wall (docs/catalog.md)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FetchFailed(f"not an http(s) URL: {url[:200]}")
    if limits.allow_private:
        return
    if parts.scheme != "https":
        raise FetchFailed("only https URLs are fetched (CATALOG_IMPORT_ALLOW_PRIVATE_URLS)")
    port = parts.port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise FetchFailed(f"{parts.hostname} does not resolve ({exc})") from exc
    for info in infos:
        if not _address_is_public(str(info[4][0])):
            raise FetchFailed(
                f"{parts.hostname} is a private address ({info[4][0]}): refused "
                "(CATALOG_IMPORT_ALLOW_PRIVATE_URLS)"
            )


async def fetch_url(http: httpx.AsyncClient, url: str, limits: FetchLimits) -> bytes:
    """The bytes at `url`, following at most `max_redirects` redirects, each hop checked."""
    for _ in range(limits.max_redirects + 1):
        await check_target(url, limits)
        try:
            async with http.stream("GET", url, timeout=limits.timeout_seconds) as reply:
                if reply.is_redirect:
                    location = reply.headers.get("location", "")
                    if not location:
                        raise FetchFailed(f"HTTP {reply.status_code} without a Location")
                    url = urljoin(url, location)
                    continue
                if reply.status_code != 200:
                    raise FetchFailed(f"HTTP {reply.status_code}")
                declared = int(reply.headers.get("content-length") or 0)
                if declared > limits.max_bytes:
                    raise FetchFailed(f"{declared} bytes, more than {limits.max_bytes}")
                data = bytearray()
                async for chunk in reply.aiter_bytes():
                    data += chunk
                    if len(data) > limits.max_bytes:
                        raise FetchFailed(f"more than {limits.max_bytes} bytes")
                return bytes(data)
        except httpx.TimeoutException as exc:
            raise FetchFailed(f"no answer within {limits.timeout_seconds:g} s") from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc
    raise FetchFailed(f"more than {limits.max_redirects} redirects")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, source: str) -> "S3Location":
        parts = urlsplit(source)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"{source!r} is not s3://bucket/prefix")
        prefix = parts.path.lstrip("/")
        return cls(parts.netloc, prefix if not prefix or prefix.endswith("/") else prefix + "/")


class S3Store:
    """One bucket store (boto3 is blocking: its calls run in threads)."""

    def __init__(self, endpoint_url: str = "", client: Any = None) -> None:
        if client is None:
            import boto3  # type: ignore[import-untyped]  # only imports from S3 need it

            client = boto3.client("s3", endpoint_url=endpoint_url or None)
        self.client = client

    async def list_images(self, where: S3Location, limit: int) -> list[str]:
        """Keys of the photos under the prefix, in key order, at most `limit` (+1 to tell)."""

        def walk() -> list[str]:
            keys: list[str] = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=where.bucket, Prefix=where.prefix
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    key = str(entry["Key"])
                    if key.lower().endswith(IMAGE_SUFFIXES):
                        keys.append(key)
                        if len(keys) > limit:
                            return keys
            return keys

        return await asyncio.to_thread(walk)

    async def fetch(self, bucket: str, key: str, max_bytes: int) -> bytes:
        def get() -> bytes:
            reply = self.client.get_object(Bucket=bucket, Key=key)
            if int(reply.get("ContentLength") or 0) > max_bytes:
                reply["Body"].close()
                raise FetchFailed(f"{reply['ContentLength']} bytes, more than {max_bytes}")
            data: bytes = reply["Body"].read(max_bytes + 1)
            if len(data) > max_bytes:
                raise FetchFailed(f"more than {max_bytes} bytes")
            return data

        try:
            return await asyncio.to_thread(get)
        except FetchFailed:
            raise
        except Exception as exc:  # botocore's errors: no such key, access denied, network
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc
