"""NATS/JetStream helpers: connect with endless reconnects (credentials and TLS from the
URL), declare streams, consumers and KV buckets idempotently, pull batches from a durable
consumer, publish protobuf with request ids."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from google.protobuf.message import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import AuthorizationError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from photosearch.common import subjects
from photosearch.common.context import current_request_id
from photosearch.common.logging import get_logger

log = get_logger(__name__)


# A NATS URL as the services hand it to connect(): the server's address, and what it takes
# to be let in, folded in by NatsSettings.
#   nats://user:password@host:4222      a user and password (percent-encoded)
#   nats://token@host:4222              a token
#   nats://host:4222?creds=/path        a credentials file (JWT and nkey seed)
#   nats://host:4222?tls_ca=/path       TLS, the server's certificate signed by this CA
#   tls://host:4222                     TLS, the server's certificate signed by a system root
_URL_FILES = {"creds", "tls_ca"}
_AUTHORIZATION_VIOLATION = "authorization violation"
# For ever, every half second (nats-py annotates the wait as int, and sleeps for a float).
_RECONNECT: dict[str, Any] = {
    "connect_timeout": 2,
    "allow_reconnect": True,
    "max_reconnect_attempts": -1,
    "reconnect_time_wait": 0.5,
}


class NatsCredentialsRefused(Exception):
    """The server refused the credentials of the first connection (or their absence)."""


def nats_url(
    address: str,
    *,
    user: str = "",
    password: str = "",
    token: str = "",
    creds_file: str = "",
    tls_ca: str = "",
) -> str:
    """`address` with the credentials and the TLS CA folded in, as connect() reads them."""
    parts = urlsplit(address)
    if password and not user:
        raise ValueError("a NATS password needs a user")
    if user and token:
        raise ValueError("NATS takes a user and password or a token, not both")
    if (user or token) and "@" in parts.netloc:
        raise ValueError("the NATS URL already carries credentials")
    netloc = parts.netloc
    if user:
        secret = f":{quote(password, safe='')}" if password else ""
        netloc = f"{quote(user, safe='')}{secret}@{netloc}"
    elif token:
        netloc = f"{quote(token, safe='')}@{netloc}"
    query = dict(parse_qsl(parts.query))
    for key, value in (("creds", creds_file), ("tls_ca", tls_ca)):
        if value:
            if key in query:
                raise ValueError(f"the NATS URL already names {key}")
            query[key] = value
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def connect_options(url: str) -> dict[str, Any]:
    """The keyword arguments of nats.connect for a URL of the form above. With TLS the
    handshake comes first (the server must set handshake_first, as components/nats-tls
    does): a server that cannot show the certificate never sees the credentials, and
    every server of a cluster is checked against the URL's host name."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if unknown := set(query) - _URL_FILES:
        raise ValueError(f"unknown NATS URL parameters: {', '.join(sorted(unknown))}")
    address = parts.netloc.rpartition("@")[2]
    options: dict[str, Any] = {
        "servers": [urlunsplit((parts.scheme, address, parts.path, "", ""))],
    }
    if parts.username is not None and parts.password is not None:
        options["user"] = unquote(parts.username)
        options["password"] = unquote(parts.password)
    elif parts.username:
        options["token"] = unquote(parts.username)
    if "creds" in query:
        options["user_credentials"] = query["creds"]
    if "tls_ca" in query or parts.scheme == "tls":
        options["tls"] = ssl.create_default_context(cafile=query.get("tls_ca"))
        options["tls_hostname"] = parts.hostname
        options["tls_handshake_first"] = True
    return options


def _who(options: dict[str, Any]) -> str:
    if "user" in options:
        return f"user {options['user']!r}"
    if "token" in options:
        return "the token"
    if "user_credentials" in options:
        return f"the credentials in {options['user_credentials']}"
    return "a connection without credentials"


async def connect(url: str, name: str) -> Client:
    """Connect once (raises if the server is not there yet); reconnect forever afterwards.
    Credentials the server refuses on that first connection raise NatsCredentialsRefused
    at once rather than being tried again and again."""
    options = connect_options(url)
    nc = Client()
    refused = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        denied = isinstance(exc, AuthorizationError) or _AUTHORIZATION_VIOLATION in str(exc).lower()
        if denied and not nc.is_connected:
            refused.set()
        log.warning("nats.error", error=str(exc))

    async def on_disconnect() -> None:
        log.warning("nats.disconnected")

    async def on_reconnect() -> None:
        log.info("nats.reconnected")

    connecting = asyncio.ensure_future(
        nc.connect(
            **options,
            **_RECONNECT,
            name=name,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
    )
    watching = asyncio.ensure_future(refused.wait())
    try:
        await asyncio.wait({connecting, watching}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the service stops while still connecting
        connecting.cancel()
        raise
    finally:
        watching.cancel()
    if not refused.is_set():
        await connecting  # raises what the connection raised
        return nc
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await connecting
    await nc.close()
    server = options["servers"][0].split("://", 1)[-1]
    raise NatsCredentialsRefused(f"NATS at {server} refused {_who(options)}")


@dataclass(frozen=True)
class Topology:
    replicas: int = 1

    def streams(self) -> list[StreamConfig]:
        return [
            StreamConfig(
                name=subjects.CATALOG_STREAM,
                subjects=subjects.CATALOG_SUBJECTS,
                retention=RetentionPolicy.LIMITS,
                max_age=14 * 24 * 3600,
                duplicate_window=600,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
            ),
            StreamConfig(
                name=subjects.EMBED_JOBS_STREAM,
                subjects=subjects.EMBED_JOBS_SUBJECTS,
                retention=RetentionPolicy.WORK_QUEUE,
                duplicate_window=120,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
            ),
            StreamConfig(
                name=subjects.EMBED_RESULTS_STREAM,
                subjects=subjects.EMBED_RESULTS_SUBJECTS,
                retention=RetentionPolicy.LIMITS,
                max_age=14 * 24 * 3600,
                duplicate_window=120,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
            ),
        ]


async def ensure_streams(js: JetStreamContext, topology: Topology) -> None:
    """Create or update every stream (safe to call from every replica at start-up)."""
    for config in topology.streams():
        try:
            await js.stream_info(config.name or "")
            await js.update_stream(config)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except Exception:  # another replica created it first
                await js.update_stream(config)


async def ensure_consumer(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    filter_subject: str | None = None,
    ack_wait: float = 30.0,
    max_deliver: int = -1,
    max_ack_pending: int = 1000,
) -> None:
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
        filter_subject=filter_subject,
    )
    await js.add_consumer(stream, config)


async def bind_pull(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    filter_subject: str | None = None,
    ack_wait: float = 30.0,
) -> JetStreamContext.PullSubscription:
    """Declare the durable pull consumer (idempotent) and subscribe to it."""
    await ensure_consumer(js, stream, durable, filter_subject=filter_subject, ack_wait=ack_wait)
    return await js.pull_subscribe_bind(durable, stream)


async def pull_batches(
    sub: JetStreamContext.PullSubscription,
    batch: int,
    *,
    timeout: float,
    stopping: asyncio.Event,
    consumer: str,
    on_idle: Callable[[], Awaitable[None]] | None = None,
) -> AsyncGenerator[list[Msg], None]:
    """Batches of up to `batch` messages until `stopping` is set. A fetch that finds
    nothing calls `on_idle`; one that fails (NATS away: the client reconnects by
    itself) is logged with the `consumer`'s name and tried again a second later. The
    next batch is fetched only when the caller asks for it, so a caller may wait for
    room before asking."""
    while not stopping.is_set():
        try:
            msgs = await sub.fetch(batch, timeout=timeout)
        except TimeoutError:  # nats' TimeoutError is one too: nothing to fetch
            if on_idle is not None:
                await on_idle()
            continue
        except Exception as exc:
            log.warning("consumer.fetch_failed", consumer=consumer, error=str(exc) or repr(exc))
            await asyncio.sleep(1.0)
            continue
        yield msgs


async def ensure_kv(js: JetStreamContext, bucket: str, ttl: float, replicas: int = 1) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except Exception:
        return await js.create_key_value(bucket=bucket, ttl=ttl, replicas=replicas, history=1)


def headers(msg_id: str | None = None) -> dict[str, str]:
    """Headers for an outgoing message: the request id and an optional de-dup id."""
    result: dict[str, str] = {}
    if rid := current_request_id():
        result[subjects.REQUEST_ID_HEADER] = rid
    if msg_id:
        result[subjects.MSG_ID_HEADER] = msg_id
    return result


async def publish(
    js: JetStreamContext,
    subject: str,
    message: Message,
    *,
    msg_id: str | None = None,
    timeout: float = 5.0,
) -> None:
    """Publish and wait for JetStream's ack (the message is stored once this returns)."""
    await js.publish(subject, message.SerializeToString(), timeout=timeout, headers=headers(msg_id))


async def drain(nc: Client, timeout: float = 5.0) -> None:
    if nc.is_closed:
        return
    try:
        await asyncio.wait_for(nc.drain(), timeout)
    except Exception:
        await nc.close()
