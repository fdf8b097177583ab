"""Writing catalog events into the transactional outbox.

An event is a row written by the same transaction as the change it announces, so
it exists exactly when the change does. Writers take one transaction-level lock
before taking an outbox id: ids are then handed out in commit order, and the relay
(relay.py) that publishes in id order publishes in commit order."""

from collections.abc import Sequence

from google.protobuf.message import Message
from psycopg import AsyncConnection

from photosearch.common.context import current_request_id

# Arbitrary constants that name two advisory locks of this database.
OUTBOX_WRITE_LOCK = 0x0CA7A1060001
OUTBOX_RELAY_LOCK = 0x0CA7A1060002
OUTBOX_CHANNEL = "catalog_outbox"

Event = tuple[str, Message]  # (subject, payload)


async def enqueue(conn: AsyncConnection, events: Sequence[Event]) -> None:
    """Append events inside the caller's open transaction and wake the relay on commit."""
    if not events:
        return
    if not conn.info.transaction_status:
        raise RuntimeError("outbox events must be written inside the change's transaction")
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (OUTBOX_WRITE_LOCK,))
    request_id = current_request_id()
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO outbox (subject, payload, request_id) VALUES (%s, %s, %s)",
            [(subject, message.SerializeToString(), request_id) for subject, message in events],
        )
    # Delivered only if and when the transaction commits.
    await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
