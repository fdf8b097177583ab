"""Entry point: python -m photosearch_gateway"""

import uvicorn

from photosearch.common.entrypoint import load_settings
from photosearch.common.logging import configure_logging
from photosearch_gateway.app import create_app
from photosearch_gateway.config import GatewaySettings
from photosearch_gateway.http_protocol import bounded_httptools

if __name__ == "__main__":
    settings = load_settings(GatewaySettings, "gateway")
    configure_logging("gateway", settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.http_port,
        # C parsers and event loop: several times less CPU per request than h11/asyncio;
        # httptools with a bound on the request head, which httptools alone does not have.
        http=bounded_httptools(settings.max_header_bytes),
        loop=settings.event_loop,
        log_config=None,  # our structlog handler formats uvicorn's lines too
        # The client address is decided in one place, against GATEWAY_TRUSTED_PROXIES.
        proxy_headers=False,
        access_log=False,  # the request-context middleware logs one line per request
        timeout_graceful_shutdown=10,
    )
