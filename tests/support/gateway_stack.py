"""The gateway in front of the real services, as tests/integration/gateway starts
them in the test's loop: what a test reaches it through, the secrets it is set up
with, and a retry for what arrives through events."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from photosearch.common.model_files import ModelFiles
from photosearch_gateway.config import GatewaySettings
from tests.support.fake_vision import FakeVision
from tests.support.services import RunningService

T = TypeVar("T")
ADMIN_TOKEN = "integration-admin-token"
CONTRIBUTOR_TOKEN = "stack-contributor-token-31f"
VISION_KEY = "AIzaSy-integration-secret-key-77"


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    """Retry until `check` stops failing an assertion (events are asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.2)


@dataclass
class Stack:
    services: dict[str, RunningService]
    http: httpx.AsyncClient
    settings: GatewaySettings
    model: ModelFiles
    vision: FakeVision
    admin: dict[str, str]

    async def stop(self, name: str) -> None:
        await self.services.pop(name).stop()
