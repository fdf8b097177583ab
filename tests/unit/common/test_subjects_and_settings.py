import re

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from photosearch.common.settings import NatsSettings, ServiceSettings
from photosearch.common.subjects import embed_consumer_name, embed_job_subject, model_key


@pytest.mark.parametrize(
    "model_id", ["facebook/dinov2-small@1", "efficientnet-lite0@1", "a.b c/d*>e", "x" * 200]
)
def test_model_keys_are_safe_tokens_for_subjects_and_consumers(model_id: str) -> None:
    key = model_key(model_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,49}", key)
    assert embed_job_subject(model_id) == f"embed.jobs.{key}"
    assert embed_consumer_name(model_id) == f"embedder-{key}"


def test_model_keys_differ_for_ids_that_look_alike() -> None:
    assert model_key("a/b@1") != model_key("a_b@1")


class DemoSettings(ServiceSettings, NatsSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")


def test_settings_read_their_own_prefix(monkeypatch) -> None:
    monkeypatch.setenv("DEMO_GRPC_PORT", "6000")
    monkeypatch.setenv("DEMO_NATS_URL", "nats://n:4222")
    monkeypatch.setenv("GRPC_PORT", "1")  # another service's setting is ignored
    settings = DemoSettings()
    assert settings.grpc_port == 6000
    assert settings.nats_url == "nats://n:4222"
    assert settings.grpc_address == "0.0.0.0:6000"


def test_bad_settings_fail_fast_with_the_field_named(monkeypatch) -> None:
    monkeypatch.setenv("DEMO_GRPC_PORT", "99999")
    with pytest.raises(ValidationError, match="grpc_port"):
        DemoSettings()
