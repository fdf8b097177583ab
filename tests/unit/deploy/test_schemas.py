"""Every rendered object is valid for the Kubernetes API, offline: built-in kinds against
the OpenAPI schemas kubernetes-validate ships (strict: unknown fields fail), custom
resources against crd_schemas.py."""

import copy
import json
import re
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from jsonschema import Draft202012Validator
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from tests.unit.deploy.crd_schemas import CRD_SCHEMAS
from tests.unit.deploy.manifests import OLDEST_SUPPORTED, Obj, Render, ident

# The oldest Kubernetes docs/deploy.md supports, and the newest kubernetes-validate knows.
VERSIONS = [OLDEST_SUPPORTED, kv_utils.latest_version()]


@cache
def _validator(version: str, kind: str, api_version: str) -> Draft202012Validator | None:
    """kubernetes_validate.validate's schema lookup, built once per kind (it re-reads the
    15 MB definitions file on every call otherwise)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    directory = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = kv_utils.schema_contents(
            f"{directory}/{kind.lower()}-{group_version}.json", version
        )
    except FileNotFoundError:
        return None
    definitions = kv_utils.schema_contents(f"{directory}/_definitions.json", version)
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return Draft202012Validator(schema, registry=registry)


def _unique(renders: dict[str, Render]) -> dict[str, Obj]:
    """Each distinct object once (the overlays share most of them)."""
    seen: dict[str, Obj] = {}
    for render in renders.values():
        for obj in render.objects:
            seen.setdefault(json.dumps(obj, sort_keys=True), obj)
    return seen


@pytest.mark.parametrize("version", VERSIONS)
def test_every_builtin_object_matches_the_kubernetes_schema(
    renders: dict[str, Render], version: str
) -> None:
    failures, without_schema = [], set()
    for obj in _unique(renders).values():
        validator = _validator(version, obj["kind"], obj["apiVersion"])
        if validator is None:
            without_schema.add((obj["apiVersion"], obj["kind"]))
            continue
        for error in validator.iter_errors(obj):
            path = ".".join(str(p) for p in error.path)
            failures.append(f"{ident(obj)}: {path}: {error.message}")
    assert not failures, "\n".join(failures)
    # Only the custom resources go without a Kubernetes schema; each has one of ours.
    assert without_schema == set(CRD_SCHEMAS), without_schema ^ set(CRD_SCHEMAS)


def test_every_custom_resource_matches_its_structural_schema(renders: dict[str, Render]) -> None:
    failures = []
    for obj in _unique(renders).values():
        schema = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if schema is None:
            continue
        for error in jsonschema.Draft202012Validator(schema).iter_errors(obj):
            path = ".".join(str(p) for p in error.path)
            failures.append(f"{ident(obj)}: {path}: {error.message}")
    assert not failures, "\n".join(failures)


def test_cached_validation_agrees_with_kubernetes_validate(renders: dict[str, Render]) -> None:
    deployment = renders["dev"].get("Deployment", "catalog")
    broken: dict[str, Any] = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = []
    misspelt: dict[str, Any] = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    for version in VERSIONS:
        validator = _validator(version, "Deployment", "apps/v1")
        assert validator is not None
        kubernetes_validate.validate(deployment, version, strict=True)
        assert validator.is_valid(deployment)
        for bad in (broken, misspelt):
            with pytest.raises(kubernetes_validate.ValidationError):
                kubernetes_validate.validate(bad, version, strict=True)
            assert not validator.is_valid(bad)


def test_structural_schemas_catch_operator_mistakes(renders: dict[str, Render]) -> None:
    scaled = copy.deepcopy(renders["prod+tls+keda"].get("ScaledObject", "embedder"))
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 64  # KEDA wants "64"
    cluster = copy.deepcopy(renders["prod"].get("Cluster", "search-db"))
    cluster["spec"]["postgresql"]["parameters"]["max_connections"] = 200
    certificate = copy.deepcopy(renders["prod+tls+keda"].get("Certificate", "catalog-tls"))
    certificate["spec"]["dnsName"] = ["catalog"]
    for obj in (scaled, cluster, certificate):
        schema = CRD_SCHEMAS[(obj["apiVersion"], obj["kind"])]
        assert not jsonschema.Draft202012Validator(schema).is_valid(obj), ident(obj)
