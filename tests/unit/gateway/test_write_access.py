"""Who may write: the contributor and admin tokens, OIDC tokens checked against a local
issuer's keys (a real HTTP server), the refusals (401, 403, 429, 503) with their reasons,
and nothing reaching catalog when a write is refused."""

import base64
import hashlib
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from photosearch_gateway import oidc
from photosearch_gateway.config import GatewaySettings
from tests.support.gateway_app import ADMIN_TOKEN, CONTRIBUTOR_TOKEN
from tests.support.oidc_issuer import CLIENT_ID, LocalIssuer, new_key
from tests.unit.gateway.fakes import World

WRITES = ("CreateItem", "AddImage")
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create(
    client: httpx.AsyncClient, name: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post("/api/v1/items", json={"name": name}, headers=headers or {})


def writes(world: World) -> list[str]:
    return [call for call in world.calls if call in WRITES]


def refusal(reply: httpx.Response, status: int, code: str, says: str) -> None:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] == code and says in error["message"], error


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(audience="photosearch-web") as running:
        yield running


def with_oidc(issuer_url: str, **more: Any) -> dict[str, Any]:
    return {"oidc_issuer": issuer_url, "oidc_audience": "photosearch-web", **more}


async def test_writing_needs_a_contributor(client: httpx.AsyncClient, world: World) -> None:
    anonymous = await create(client, "Spam")
    refusal(anonymous, 401, "unauthenticated", "writing needs the contributor token")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    item = world.add_item("Boat")
    photo = await client.post(
        f"/api/v1/items/{item.id}/images", files={"photo": ("b.png", PNG, "image/png")}
    )
    refusal(photo, 401, "unauthenticated", "writing needs")
    refusal(
        await create(client, "Spam", {"Authorization": "Bearer guess"}),
        401,
        "unauthenticated",
        "not accepted",
    )
    assert writes(world) == []
    assert (await create(client, "Real", bearer(CONTRIBUTOR_TOKEN))).status_code == 201
    assert (await create(client, "Mine", bearer(ADMIN_TOKEN))).status_code == 201
    assert writes(world) == ["CreateItem", "CreateItem"]


@pytest.mark.parametrize("settings_overrides", [{"user_token": "reader-token-789"}])
async def test_the_user_token_reads_but_does_not_write(
    client: httpx.AsyncClient, world: World
) -> None:
    reply = await create(client, "Spam", bearer("reader-token-789"))
    refusal(reply, 403, "forbidden", "the user token may not write")
    assert writes(world) == []
    listed = await client.get("/api/v1/items", headers=bearer("reader-token-789"))
    assert listed.status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"contributor_token": ""}])
async def test_without_contributors_only_admins_write(
    client: httpx.AsyncClient, world: World
) -> None:
    refusal(await create(client, "Spam"), 401, "unauthenticated", "only admins write")
    assert (await create(client, "Mine", bearer(ADMIN_TOKEN))).status_code == 201


@pytest.mark.parametrize(
    "settings_overrides",
    [{"write_burst": 2, "write_rate_per_minute": 1, "trusted_proxies": "10.0.0.1"}],
)
async def test_writes_are_limited_per_identity(client: httpx.AsyncClient, world: World) -> None:
    """The same contributor from ever new addresses still runs out."""
    replies = [
        await create(
            client, f"Item {n}", {**bearer(CONTRIBUTOR_TOKEN), "X-Forwarded-For": f"9.9.9.{n}"}
        )
        for n in range(3)
    ]
    assert [r.status_code for r in replies] == [201, 201, 429]
    refusal(replies[-1], 429, "rate_limited", "too many writes by this caller")
    assert int(replies[-1].headers["retry-after"]) >= 1
    assert writes(world) == ["CreateItem", "CreateItem"]
    # Admins are not limited.
    for n in range(4):
        assert (await create(client, f"Admin {n}", bearer(ADMIN_TOKEN))).status_code == 201


@pytest.mark.parametrize(
    "settings_overrides", [{"write_address_burst": 3, "write_address_rate_per_minute": 1}]
)
async def test_guessing_tokens_counts_against_the_address(
    client: httpx.AsyncClient, world: World
) -> None:
    for n in range(3):
        reply = await create(client, "Spam", bearer(f"guess-{n}"))
        assert reply.status_code == 401
    refusal(
        await create(client, "Real", bearer(CONTRIBUTOR_TOKEN)),
        429,
        "rate_limited",
        "too many writes from this address",
    )
    assert writes(world) == []


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    """OIDC tests name the issuer through `oidc` (the module's running issuer)."""
    params: dict[str, object] = dict(getattr(request, "param", {}))
    if params.pop("oidc", False):
        issuer: LocalIssuer = request.getfixturevalue("issuer")
        return with_oidc(issuer.url, **params)
    return params


OIDC = pytest.mark.parametrize("settings_overrides", [{"oidc": True}], indirect=True)


@OIDC
async def test_oidc_roles(client: httpx.AsyncClient, world: World, issuer: LocalIssuer) -> None:
    contributor = bearer(issuer.token("alice", ["contributor"]))
    reader = bearer(issuer.token("bob", []))
    admin = bearer(issuer.token("carol", ["admin"]))
    assert (await create(client, "Alice's", contributor)).status_code == 201
    refusal(await create(client, "Bob's", reader), 403, "forbidden", "bob may not write")
    assert (await create(client, "Carol's", admin)).status_code == 201
    assert (await client.get("/api/v1/admin/settings", headers=admin)).status_code == 200
    refusal(
        await client.get("/api/v1/admin/settings", headers=contributor),
        403,
        "forbidden",
        "alice may not use the admin API",
    )
    assert writes(world) == ["CreateItem", "CreateItem"]


@OIDC
async def test_oidc_tokens_that_are_refused(
    client: httpx.AsyncClient, world: World, issuer: LocalIssuer
) -> None:
    cases = {
        "expired": issuer.token("alice", ["contributor"], lifetime=-120),
        "not for this application": issuer.token("alice", ["contributor"], aud="other-app"),
        "not issued by": issuer.token("alice", ["contributor"], iss="https://evil.example"),
        "not valid": issuer.token("alice", ["contributor"], key=new_key()),  # forged
        "not one of the issuer's": issuer.token("alice", ["contributor"], kid="unknown"),
    }
    for reason, token in cases.items():
        reply = await create(client, "Forged", bearer(token))
        refusal(reply, 401, "unauthenticated", reason)
        assert reply.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    none_alg = issuer.token("alice", ["contributor"]).split(".")
    header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    unsigned = f"{header}.{none_alg[1]}."
    refusal(await create(client, "None", bearer(unsigned)), 401, "unauthenticated", "'none'")
    assert writes(world) == []


@OIDC
async def test_keys_are_cached_and_refetched_on_rotation(
    client: httpx.AsyncClient, issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = issuer.key_fetches
    for n in range(3):
        token = issuer.token(f"user{n}", ["contributor"])
        assert (await create(client, f"Item {n}", bearer(token))).status_code == 201
    assert issuer.key_fetches == before + 1  # fetched once, then cached
    # Made-up key ids do not make the gateway hammer the issuer.
    for n in range(5):
        await create(client, "Spam", bearer(issuer.token("eve", ["contributor"], kid=f"k{n}")))
    assert issuer.key_fetches == before + 1
    # A rotation is picked up on the first token signed with the new key.
    monkeypatch.setattr(oidc, "MIN_REFETCH_SECONDS", 0.0)
    issuer.rotate()
    token = issuer.token("dave", ["contributor"])
    assert (await create(client, "After rotation", bearer(token))).status_code == 201
    assert issuer.key_fetches == before + 2


@OIDC
async def test_an_issuer_outage(client: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    issuer.down = True
    try:
        reply = await create(client, "Item", bearer(issuer.token("alice", ["contributor"])))
        refusal(reply, 503, "unavailable", "signing keys could not be fetched")
        assert reply.headers["retry-after"]
    finally:
        issuer.down = False
    token = issuer.token("alice", ["contributor"])
    assert (await create(client, "Item", bearer(token))).status_code == 201
    # Once the keys are cached, the issuer going down signs no one out.
    issuer.down = True
    try:
        assert (await create(client, "Item 2", bearer(token))).status_code == 201
    finally:
        issuer.down = False


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {"oidc": True, "oidc_roles_claim": "realm_access.roles"},
        {"oidc": True, "oidc_roles_claim": "scope", "oidc_contributor_role": "catalog:write"},
    ],
    indirect=True,
)
async def test_the_roles_claim_is_configurable(
    client: httpx.AsyncClient, settings: GatewaySettings, issuer: LocalIssuer
) -> None:
    if settings.oidc_roles_claim == "scope":
        token = issuer.token("alice", scope="openid catalog:write")
    else:
        token = issuer.token("alice", realm_access={"roles": ["contributor"]})
    assert (await create(client, "Item", bearer(token))).status_code == 201


def test_an_issuer_needs_an_audience() -> None:
    with pytest.raises(ValueError, match="GATEWAY_OIDC_AUDIENCE is required"):
        GatewaySettings(oidc_issuer="https://id.example.com")
    with pytest.raises(ValueError, match="not an http"):
        GatewaySettings(oidc_issuer="id.example.com", oidc_audience="x")


# --- the page's sign-in (authorization code with PKCE) -----------------------------------


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def authorization_code(issuer: LocalIssuer, challenge: str, redirect_uri: str) -> str:
    """What the browser does at the provider: the user is signed in there already."""
    query = {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect_uri,
        "scope": "openid", "state": "s1", "code_challenge": challenge,
        "code_challenge_method": "S256",
    }  # fmt: skip
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{issuer.url}/authorize", params=query)
    assert reply.status_code == 302, reply.text
    back = parse_qs(urlsplit(reply.headers["location"]).query)
    assert back["state"] == ["s1"]
    return back["code"][0]


SIGN_IN = pytest.mark.parametrize(
    "settings_overrides", [{"oidc": True, "oidc_client_id": CLIENT_ID}], indirect=True
)


@SIGN_IN
async def test_the_page_signs_a_contributor_in_with_the_provider(
    client: httpx.AsyncClient, world: World, issuer: LocalIssuer
) -> None:
    config = (await client.get("/api/v1/config")).json()
    assert config["sign_in"] == {
        "authorization_endpoint": f"{issuer.url}/authorize",
        "client_id": CLIENT_ID,
        "scope": "openid profile",
    }
    verifier, challenge = pkce()
    code = await authorization_code(issuer, challenge, "http://gw/")
    body = {"code": code, "code_verifier": verifier, "redirect_uri": "http://gw/"}
    signed = await client.post("/api/v1/auth/token", json=body)
    assert signed.status_code == 200, signed.text
    assert (signed.json()["name"], signed.json()["roles"]) == ("alice", ["contributor"])
    created = await create(client, "Signed in", bearer(signed.json()["access_token"]))
    assert created.status_code == 201, created.text
    assert world.calls.count("CreateItem") == 1
    # A code redeems once, and only with its own verifier.
    again = await client.post("/api/v1/auth/token", json=body)
    refusal(again, 401, "unauthenticated", "unknown code")
    _, challenge = pkce()
    code = await authorization_code(issuer, challenge, "http://gw/")
    wrong = {"code": code, "code_verifier": verifier, "redirect_uri": "http://gw/"}
    refusal(
        await client.post("/api/v1/auth/token", json=wrong),
        401,
        "unauthenticated",
        "PKCE verifier mismatch",
    )


@OIDC
async def test_without_a_client_id_the_page_has_no_sign_in(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/config")).json()["sign_in"] is None
    verifier, _ = pkce()
    body = {"code": "x", "code_verifier": verifier, "redirect_uri": "http://gw/"}
    refusal(await client.post("/api/v1/auth/token", json=body), 409, "sign_in_disabled", "paste")
