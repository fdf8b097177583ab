"""Property-based fuzzing of the running gateway from its own OpenAPI document
(schemathesis): valid and invalid requests for every operation, with a token so routes
are fuzzed past their auth. No answer is a 5xx; status codes, content types and headers
are the documented ones; every error is the documented JSON error body; invalid requests
are refused. Bounded: a fixed number of examples per operation and mode.

(schemathesis's own pytest plugin cannot load a schema from a fixture under pytest 9, so
the operations' Hypothesis strategies are driven here directly, one test per operation.)"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks

from photosearch_devstack.mesh import Mesh
from photosearch_gateway.app import create_app
from photosearch_gateway.config import GatewaySettings
from photosearch_gateway.errors import ErrorBody
from tests.support.mesh_api import Api, Seed
from tests.support.security import VISION_KEY, new_client

pytestmark = pytest.mark.slow
EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 6}
# Answers whose items carry timestamps (see test_successful_bodies_match_their_...).
WITH_TIMESTAMPS = {
    "GET /api/v1/items",
    "POST /api/v1/items",
    "GET /api/v1/items/{item_id}",
    "GET /api/v1/items/{item_id}/images",
    "POST /api/v1/items/{item_id}/images",
    "GET /api/v1/admin/index",
}


def error_body_is_documented(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx answer is JSON in the one documented error shape."""
    if response.status_code < 400:
        return None
    error = ErrorBody.model_validate(response.json()).error
    assert error.code and error.message, response.text
    (request_id,) = response.headers.get("x-request-id", [None])  # header values are lists
    assert error.request_id == request_id, response.headers
    return True


BASE_CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    error_body_is_documented,
]


def documented_operations(with_input: bool = False) -> list[str]:
    """Operation labels ("GET /api/v1/items") of the gateway's document, known before any
    process starts; `with_input`: only those that take parameters or a body (the others
    have no invalid request to make)."""
    document = create_app(GatewaySettings(model_dir=Path("."))).openapi()
    return [
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if not with_input or operation.get("parameters") or operation.get("requestBody")
    ]


def leaves_out_the_token(case: Any) -> bool:
    data = case.meta.phase.data if case.meta else None
    named = [getattr(data, "parameter", None)]
    named += [m.parameter for m in getattr(data, "mutations", None) or []]
    return "Authorization" in named


def carries_nul(case: Any) -> bool:
    body = case.body if isinstance(case.body, dict | list | str) else None
    parts = [body, case.query, case.path_parameters, case.headers]
    return "\\u0000" in json.dumps(parts, default=str)


def fuzz(operation: Any, mesh: Mesh, mode: GenerationMode, check_list: list[Any]) -> None:
    token = mesh.admin_auth

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        # NUL characters have a test of their own (test_bad_input.py), marked until fixed.
        assume(not carries_nul(case))
        # A case whose invalid part is the missing token goes without one (and must be
        # refused); every other case gets a valid token, to reach past the auth.
        headers = new_client() if leaves_out_the_token(case) else {**token, **new_client()}
        case.call_and_validate(headers=headers, checks=check_list, timeout=30)

    run()


@pytest.fixture(scope="module", autouse=True)
def admin_settings_restored(api: Api) -> Iterator[None]:
    """Fuzzing PUT /admin/settings turns features off and clears the Vision key: put the
    package's mesh back as the other test modules expect it, whatever order they run in."""
    yield
    settings = api.settings(
        photo_search_enabled=True, web_fallback_enabled=True, vision_api_key=VISION_KEY
    )
    assert settings["web_fallback_available"] is True


@pytest.fixture(scope="module")
def operations(mesh: Mesh, seed: Seed) -> dict[str, Any]:
    schema = schemathesis.openapi.from_url(f"{mesh.gateway_url}/openapi.json")
    results: list[Any] = list(schema.get_all_operations())
    found = {op.label: op for op in (result.ok() for result in results)}
    assert sorted(found) == sorted(documented_operations())
    return found


CASES = [
    pytest.param(label, mode, id=f"{mode}-{label}")
    for mode in EXAMPLES
    for label in documented_operations(with_input=mode == GenerationMode.NEGATIVE)
]


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_the_gateway_answers_every_generated_request_as_documented(
    mesh: Mesh, operations: dict[str, Any], label: str, mode: GenerationMode
) -> None:
    fuzz(operations[label], mesh, mode, BASE_CHECKS)


@pytest.mark.parametrize("label", ["GET /api/v1/items", "GET /api/v1/admin/index"])
def test_successful_bodies_match_their_documented_schema(
    mesh: Mesh, operations: dict[str, Any], label: str
) -> None:
    fuzz(operations[label], mesh, GenerationMode.POSITIVE, [checks.response_schema_conformance])


def test_every_other_successful_body_matches_its_documented_schema(
    mesh: Mesh, operations: dict[str, Any]
) -> None:
    failures = []
    for label, operation in operations.items():
        if label in WITH_TIMESTAMPS:
            continue
        try:
            fuzz(operation, mesh, GenerationMode.POSITIVE, [checks.response_schema_conformance])
        except Exception as exc:  # report every operation, not just the first
            failures.append(f"{label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_an_unknown_model_in_the_duplicates_report_is_a_documented_answer(
    mesh: Mesh, seed: Seed
) -> None:
    document = create_app(GatewaySettings(model_dir=Path("."))).openapi()
    documented = document["paths"]["/api/v1/admin/duplicates"]["get"]["responses"]
    admin = mesh.admin_auth
    reply = httpx.get(
        f"{mesh.gateway_url}/api/v1/admin/duplicates",
        params={"model_id": "no/such-model@1"},
        headers=admin,
        timeout=30,
    )
    assert reply.status_code >= 400 and reply.json()["error"]["code"], reply.text
    assert str(reply.status_code) in documented, (reply.status_code, sorted(documented))
