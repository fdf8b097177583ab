"""The one entry point of every gRPC service: settings from the environment (or an
exit that names the bad setting), logging, then build the server and serve it until
SIGTERM."""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from photosearch.common.grpc_server import GrpcServer, Lifecycle, serve
from photosearch.common.logging import configure_logging
from photosearch.common.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
B = TypeVar("B", bound=BaseSettings)
BuildServer = Callable[[S], Awaitable[tuple[GrpcServer, Lifecycle]]]


def load_settings(settings_type: type[B], name: str) -> B:
    """Settings from the environment, or exit with what is missing or malformed."""
    try:
        return settings_type()
    except ValidationError as exc:
        prefix = str(settings_type.model_config.get("env_prefix", ""))
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        sys.exit(f"{name}: invalid configuration: {problems}")


async def _build_and_serve(build_server: BuildServer[S], settings: S) -> None:
    server, lifecycle = await build_server(settings)
    await serve(server, lifecycle, settings)


def main(
    build_server: BuildServer[S],
    settings_type: type[S],
    name: str,
    *,
    process_setup: Callable[[], None] | None = None,
) -> None:
    """`process_setup` runs once logging is configured, before the server is built:
    for process-wide set-up that tests building servers in-process must not get."""
    settings = load_settings(settings_type, name)
    configure_logging(name, settings.log_level, settings.log_format)
    if process_setup is not None:
        process_setup()
    asyncio.run(_build_and_serve(build_server, settings))
