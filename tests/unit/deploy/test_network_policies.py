"""The NetworkPolicies, evaluated: which photosearch pod may open a connection to which,
and who outside the namespace may come in. The allowed graph is the one in the brief of
components/network-policies; anything else must be refused."""

import itertools
import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.unit.deploy.manifests import (
    Obj,
    Render,
    ident,
    kustomize,
    label_selector_matches,
    of_kind,
    pod_labels,
)

ROLE = "app.kubernetes.io/component"
# caller -> callee, inside the namespace
ALLOWED = {
    ("gateway", "catalog"),
    ("gateway", "search"),
    ("gateway", "embedder"),
    ("gateway", "fallback"),
    ("search", "catalog"),
    ("embedder", "catalog"),
    ("fallback", "catalog"),
    ("catalog", "database"),
    ("search", "database"),
    ("catalog", "nats"),
    ("search", "nats"),
    ("embedder", "nats"),
    ("nats", "nats"),  # cluster routes
    ("database", "database"),  # CloudNativePG replication
}
# callee -> namespaces allowed in (by kubernetes.io/metadata.name)
FROM_OUTSIDE = {
    "gateway": {"ingress-nginx"},
    "database": {"cnpg-system"},
}
KEDA_NAMESPACE = "keda"


def _roles(render: Render) -> dict[str, dict[str, str]]:
    """One sample of pod labels per role, from the workloads and CloudNativePG Clusters."""
    roles: dict[str, dict[str, str]] = {}
    for workload in render.workloads:
        labels = pod_labels(workload)
        roles.setdefault(labels[ROLE], labels)
    for cluster in render.kinds("Cluster"):
        labels = cluster["spec"]["inheritedMetadata"]["labels"]
        roles.setdefault(labels[ROLE], labels)
    return roles


def _policies(render: Render, labels: dict[str, str], direction: str) -> list[Obj]:
    return [
        p
        for p in render.kinds("NetworkPolicy")
        if direction in p["spec"]["policyTypes"]
        and label_selector_matches(p["spec"]["podSelector"], labels)
    ]


def _peer_admits(peer: Obj, labels: dict[str, str], namespace: str | None) -> bool:
    """namespace None = the policy's own namespace."""
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if namespace is None:
            return False  # every rule here names other namespaces by name
        ns_labels = {"kubernetes.io/metadata.name": namespace}
        if not label_selector_matches(peer["namespaceSelector"], ns_labels):
            return False
        return "podSelector" not in peer or label_selector_matches(peer["podSelector"], labels)
    if namespace is not None:
        return False
    return label_selector_matches(peer["podSelector"], labels)


def _admits(policies: list[Obj], key: str, peer_key: str, labels: dict[str, str],
            namespace: str | None) -> bool:  # fmt: skip
    return any(
        _peer_admits(peer, labels, namespace)
        for policy in policies
        for rule in policy["spec"].get(key, [])
        for peer in rule.get(peer_key, [])
    )


def connection_allowed(render: Render, source: dict[str, str], target: dict[str, str]) -> bool:
    ingress = _policies(render, target, "Ingress")
    egress = _policies(render, source, "Egress")
    inbound = not ingress or _admits(ingress, "ingress", "from", source, None)
    outbound = not egress or _admits(egress, "egress", "to", target, None)
    return inbound and outbound


@pytest.fixture(params=["dev", "prod", "dev+next+tls+keda", "prod+tls+keda", "layered"])
def guarded(request: pytest.FixtureRequest, renders: dict[str, Render]) -> Render:
    return renders[request.param]


def test_only_the_designed_connections_are_allowed(guarded: Render) -> None:
    roles = _roles(guarded)
    assert {"gateway", "catalog", "search", "embedder", "fallback", "nats", "database"} <= set(
        roles
    )
    wrong = []
    for (src, src_labels), (dst, dst_labels) in itertools.product(roles.items(), repeat=2):
        allowed = connection_allowed(guarded, src_labels, dst_labels)
        if allowed != ((src, dst) in ALLOWED):
            wrong.append(f"{src} -> {dst}: {'allowed' if allowed else 'refused'}")
    assert not wrong, "\n".join(wrong)


def test_only_the_gateway_and_the_data_operators_are_reachable_from_outside(
    guarded: Render,
) -> None:
    namespaces = {"ingress-nginx", "monitoring", "cnpg-system", KEDA_NAMESPACE, "default", "x"}
    keda = guarded.has("ScaledObject", "embedder")
    monitored = guarded.has("NetworkPolicy", "metrics-from-monitoring")
    for role, labels in _roles(guarded).items():
        ingress = _policies(guarded, labels, "Ingress")
        assert ingress, f"{role} accepts anything: no ingress policy selects it"
        admitted = {ns for ns in namespaces if _admits(ingress, "ingress", "from", labels, ns)}
        expected = set(FROM_OUTSIDE.get(role, set()))
        if keda and role == "nats":
            expected.add(KEDA_NAMESPACE)
        if monitored and role != "model-export":  # a Job: nothing to scrape
            expected.add("monitoring")  # to the metrics port alone (below)
        assert admitted == expected, role
    if monitored:
        (rule,) = guarded.get("NetworkPolicy", "metrics-from-monitoring")["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": "metrics"}]


def test_photosearch_pods_may_only_call_out_where_they_must(guarded: Render) -> None:
    """Egress is restricted for every service; the public internet (port 443 only) is open
    to the fallback (Google Vision) and the model export (model hub) alone."""
    for role, labels in _roles(guarded).items():
        if role in ("nats", "database"):
            continue
        egress = _policies(guarded, labels, "Egress")
        assert egress, f"{role} may call anywhere"
        public = [
            rule
            for policy in egress
            for rule in policy["spec"].get("egress", [])
            if any("ipBlock" in peer for peer in rule.get("to", []))
        ]
        if role in ("fallback", "model-export"):
            assert public and all(r["ports"] == [{"protocol": "TCP", "port": 443}] for r in public)
            for rule in public:
                (peer,) = rule["to"]
                assert "10.0.0.0/8" in peer["ipBlock"]["except"]  # not the cluster's network
        else:
            assert not public, role


def test_every_rule_names_its_ports(guarded: Render) -> None:
    for policy in guarded.kinds("NetworkPolicy"):
        for key in ("ingress", "egress"):
            for rule in policy["spec"].get(key, []):
                peers = rule.get("from", rule.get("to", []))
                # CloudNativePG's own traffic (operator, replication) is the one exception.
                if policy["metadata"]["name"] == "database" and "ports" not in rule:
                    continue
                assert rule.get("ports"), f"{ident(policy)} opens every port to {peers}"


def test_every_policy_selects_pods(guarded: Render) -> None:
    roles = _roles(guarded)
    for policy in guarded.kinds("NetworkPolicy"):
        selector = policy["spec"]["podSelector"]
        assert any(label_selector_matches(selector, labels) for labels in roles.values()), ident(
            policy
        )


# network-policy-settings.yaml of each overlay: setting -> the namespace the policies admit.
SETTINGS = {"ingress-namespace": "ingress-nginx", "cnpg-namespace": "cnpg-system"}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_cluster_namespaces_are_one_setting_per_overlay(
    overlay: str, k8s_tree: Path, renders: dict[str, Render], tmp_path: Path
) -> None:
    """Changing network-policy-settings.yaml changes every policy that names the namespace,
    and nothing else; the ConfigMap itself is never applied."""
    tree = tmp_path / "k8s"
    shutil.copytree(k8s_tree, tree)
    path = tree / "overlays" / overlay / "network-policy-settings.yaml"
    settings = yaml.safe_load(path.read_text())
    assert settings["data"] == SETTINGS
    renamed = {value: f"other-{value}" for value in SETTINGS.values()}
    settings["data"] = {key: renamed[value] for key, value in SETTINGS.items()}
    path.write_text(yaml.safe_dump(settings))
    changed = of_kind(kustomize(tree / "overlays" / overlay), "NetworkPolicy", "ConfigMap")
    assert not [c for c in changed if c["metadata"]["name"] == "network-policy-settings"]
    policies = json.dumps(of_kind(changed, "NetworkPolicy"), sort_keys=True)
    for old, new in renamed.items():
        assert f'"{old}"' not in policies, f"a policy still names {old}"
        assert f'"{new}"' in policies
    expected = json.dumps(renders[overlay].kinds("NetworkPolicy"), sort_keys=True)
    for old, new in renamed.items():
        expected = expected.replace(f'"{old}"', f'"{new}"')
    assert policies == expected
