"""One mesh of real processes for the security and bad-input tests, configured the way
an admin would: photo search on, the web fallback on with a Google Vision key (served
by the fake Vision), a user token for searches, contributors named by a contributor
token or by OIDC tokens of a local issuer, search and fallback rate limits at their
defaults behind a trusted proxy (each test names its own client with X-Forwarded-For),
every service logging at debug level so
that the secret checks read as many lines as possible."""

from collections.abc import Iterator

import pytest

from photosearch_devstack.mesh import Mesh
from tests.support.fake_vision import RICH_WEB_DETECTION, FakeVision, Reply
from tests.support.mesh import mesh_env, model, photo, running_mesh
from tests.support.mesh_api import Api, Seed
from tests.support.oidc_issuer import LocalIssuer
from tests.support.security import AUDIENCE, SEED_ITEMS, USER_TOKEN, VISION_KEY, new_client


@pytest.fixture(scope="package")
def vision() -> Iterator[FakeVision]:
    with FakeVision(api_key=VISION_KEY) as fake:
        fake.set_default(Reply.web_detection(RICH_WEB_DETECTION))
        yield fake


@pytest.fixture(scope="package")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(audience=AUDIENCE) as running:
        yield running


@pytest.fixture(scope="package")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, vision: FakeVision, issuer: LocalIssuer
) -> Iterator[Mesh]:
    levels = {
        f"{prefix}_LOG_LEVEL": "debug"
        for prefix in ("CATALOG", "SEARCH", "EMBED", "FALLBACK", "GATEWAY")
    }
    defaults = {  # the shipped limits, not the test mesh's "no limit"
        "GATEWAY_SEARCH_RATE_PER_MINUTE": "120",
        "GATEWAY_FALLBACK_RATE_PER_MINUTE": "10",
    }
    env = mesh_env(
        model(),
        FALLBACK_VISION_ENDPOINT=vision.endpoint,
        GATEWAY_TRUSTED_PROXIES="127.0.0.1",
        # Searches need a token, as the OpenAPI document says they do.
        GATEWAY_USER_TOKEN=USER_TOKEN,
        GATEWAY_OIDC_ISSUER=issuer.url,
        GATEWAY_OIDC_AUDIENCE=AUDIENCE,
        **levels,
        **defaults,
    )
    with running_mesh(tmp_path_factory.mktemp("security") / "data", env) as running:
        yield running


@pytest.fixture(scope="package")
def api(mesh: Mesh) -> Iterator[Api]:
    client = Api.open(mesh)
    client.http.headers.update(new_client())  # writes as the contributor (Api.open)
    yield client
    client.close()


@pytest.fixture(scope="package")
def seed(api: Api) -> Seed:
    settings = api.settings(
        photo_search_enabled=True, web_fallback_enabled=True, vision_api_key=VISION_KEY
    )
    assert settings["web_fallback_available"] is True
    items = [api.add_item_with_photo(f"Sample {n}", photo(n)) for n in range(SEED_ITEMS)]
    status = api.wait_embedded(SEED_ITEMS)
    return Seed(status["model_id"], items)
