"""The gateway's HTTP server bounds the request head: a head over the limit is a 431 in the
API's error shape, answered while the client is still sending (not a connection reset), and
the limit is per request, not per connection. The real app under uvicorn on a free port."""

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from photosearch_gateway.app import create_app
from photosearch_gateway.http_protocol import bounded_httptools
from tests.unit.gateway.fakes import unreachable_settings

LIMIT = 16 * 1024


@pytest.fixture
async def gateway_url(tmp_path: Path) -> AsyncIterator[str]:
    settings = unreachable_settings(tmp_path, max_header_bytes=LIMIT)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        create_app(settings),
        http=bounded_httptools(settings.max_header_bytes),
        loop="none",  # the test's loop
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), serving
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await serving


def padding(head_bytes: int) -> dict[str, str]:
    return {"X-Padding": "x" * head_bytes}


async def test_a_head_over_the_limit_is_refused_with_431(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as http:
        reply = await http.get("/healthz", headers=padding(LIMIT + 1))
    assert reply.status_code == 431, reply.text
    error = reply.json()["error"]
    assert error["code"] == "headers_too_large" and str(LIMIT) in error["message"]
    assert error["request_id"] == reply.headers["x-request-id"]
    assert reply.headers["connection"] == "close"


async def test_a_head_much_bigger_than_a_read_is_answered_not_reset(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as http:
        reply = await http.get("/healthz", headers=padding(4_000_000))
        assert reply.status_code == 431, reply.text
        assert (await http.get("/healthz")).status_code == 200  # the server is fine


async def test_a_head_under_the_limit_is_served(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as http:
        reply = await http.get("/healthz", headers=padding(LIMIT - 1024))
    assert reply.status_code == 200, reply.text


async def test_the_limit_is_per_request_on_a_kept_alive_connection(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as http:
        for _ in range(4):  # together far over the limit
            reply = await http.get("/healthz", headers=padding(LIMIT // 2))
            assert reply.status_code == 200, reply.text


async def test_a_body_bigger_than_the_head_limit_is_not_a_head(gateway_url: str) -> None:
    # Head and body in one write, so the server reads them in the same chunks.
    body = b"[" * (LIMIT * 8)  # not JSON
    head = (
        b"POST /api/v1/search HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    host, port = gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request", answer[:500]
    assert b'"invalid_argument"' in rest
