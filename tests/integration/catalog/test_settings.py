"""Admin settings: switches default off, the Vision API key is write-only,
encrypted at rest with CATALOG_SETTINGS_KEY, and readable only decrypted by
GetVisionCredentials."""

import logging

import grpc
import psycopg
import pytest
import structlog
from cryptography.fernet import Fernet

from photosearch.catalog.v1 import catalog_pb2
from photosearch.common.logging import configure_logging, get_logger
from tests.support.catalog import make_settings, start_catalog

API_KEY = "AIzaSyTESTKEY-0123456789abcdefghijklmno"


async def test_defaults_are_off_and_the_key_is_write_only(catalog) -> None:
    settings = await catalog.stub.GetSettings(catalog_pb2.GetSettingsRequest())
    assert settings == catalog_pb2.Settings()  # everything off, no key

    updated = await catalog.stub.UpdateSettings(
        catalog_pb2.UpdateSettingsRequest(photo_search_enabled=True, vision_api_key=API_KEY)
    )
    assert updated.photo_search_enabled and updated.vision_api_key_set
    assert not updated.web_fallback_enabled
    assert API_KEY not in str(updated) and API_KEY.encode() not in updated.SerializeToString()

    # Fields left out stay as they were.
    again = await catalog.stub.UpdateSettings(
        catalog_pb2.UpdateSettingsRequest(web_fallback_enabled=True)
    )
    assert again.photo_search_enabled and again.web_fallback_enabled and again.vision_api_key_set

    credentials = await catalog.stub.GetVisionCredentials(catalog_pb2.GetVisionCredentialsRequest())
    assert credentials.api_key == API_KEY and credentials.web_fallback_enabled

    cleared = await catalog.stub.UpdateSettings(
        catalog_pb2.UpdateSettingsRequest(clear_vision_api_key=True)
    )
    assert not cleared.vision_api_key_set
    credentials = await catalog.stub.GetVisionCredentials(catalog_pb2.GetVisionCredentialsRequest())
    assert credentials.api_key == ""


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"vision_api_key": "   "}, "clear_vision_api_key"),
        ({"vision_api_key": "two words"}, "does not look like"),
        ({"vision_api_key": API_KEY, "clear_vision_api_key": True}, "not both"),
    ],
)
async def test_bad_key_updates_are_refused(catalog, request_fields, message) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.UpdateSettings(catalog_pb2.UpdateSettingsRequest(**request_fields))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    assert not (await catalog.stub.GetSettings(catalog_pb2.GetSettingsRequest())).vision_api_key_set


async def test_the_key_is_encrypted_at_rest(catalog, database_url) -> None:
    await catalog.stub.UpdateSettings(catalog_pb2.UpdateSettingsRequest(vision_api_key=API_KEY))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT vision_api_key_encrypted FROM admin_settings")
        stored = bytes((await cur.fetchone())[0])
        assert API_KEY.encode() not in stored
        assert Fernet(catalog.settings.settings_key.get_secret_value()).decrypt(stored) == (
            API_KEY.encode()
        )
        # The table's file on disk, as a backup of the data directory would hold it.
        await conn.execute("CHECKPOINT")
        cur = await conn.execute(
            "SELECT pg_read_binary_file(pg_relation_filepath('admin_settings'))"
        )
        raw = bytes((await cur.fetchone())[0])
        assert raw and API_KEY.encode() not in raw


async def test_the_key_never_reaches_a_log_line(catalog, capsys) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    configure_logging("catalog", "debug", "json")
    try:
        await catalog.stub.UpdateSettings(catalog_pb2.UpdateSettingsRequest(vision_api_key=API_KEY))
        await catalog.stub.GetVisionCredentials(catalog_pb2.GetVisionCredentialsRequest())
        get_logger("test").warning("careless", detail=f"the key is {API_KEY}")
        output = capsys.readouterr().out
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.configure(**saved_structlog)
    assert "settings.updated" in output and "[redacted]" in output
    assert API_KEY not in output


async def test_settings_key_rotation_and_a_lost_key(database_url, nats_server) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    service, catalog = await start_catalog(
        make_settings(database_url, nats_server.url, settings_key=old)
    )
    await catalog.stub.UpdateSettings(catalog_pb2.UpdateSettingsRequest(vision_api_key=API_KEY))
    await service.stop()

    service, catalog = await start_catalog(
        make_settings(database_url, nats_server.url, settings_key=f"{new},{old}")
    )
    credentials = await catalog.stub.GetVisionCredentials(catalog_pb2.GetVisionCredentialsRequest())
    assert credentials.api_key == API_KEY
    await service.stop()

    service, catalog = await start_catalog(
        make_settings(database_url, nats_server.url, settings_key=new)
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await catalog.stub.GetVisionCredentials(catalog_pb2.GetVisionCredentialsRequest())
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "set the API key again" in err.value.details()
    finally:
        await service.stop()
