"""The monitoring component: alert rules that promtool accepts and that fire on what they
describe (deploy/monitoring/alerts.test.yaml), a runbook for every alert, and a dashboard
and rules that only read metrics the services really export."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from photosearch.common.metrics import ServiceMetrics
from photosearch_catalog.metrics import CatalogMetrics
from photosearch_embedder.metrics import EmbedderMetrics
from photosearch_gateway.metrics import Metrics as GatewayMetrics
from photosearch_search.metrics import SearchMetrics
from tests.unit.deploy.conftest import enable_components
from tests.unit.deploy.manifests import (
    K8S,
    Render,
    config_maps_of,
    container_ports,
    kustomize,
    name_of,
    pod_labels,
    selects,
)

ROOT = K8S.parent.parent
COMPONENT = K8S / "components" / "monitoring"
DASHBOARD = ROOT / "deploy" / "monitoring" / "photosearch.json"
RULE_TESTS = ROOT / "deploy" / "monitoring" / "alerts.test.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
# Metric families photosearch's own code exports; the others (NATS, Postgres, up) come
# from their exporters and Prometheus.
OWN = re.compile(r"\b((?:search|embedder|catalog|gateway|grpc_server|photosearch)_[a-z_]+)")


def rule_groups() -> dict[str, object]:
    rule = yaml.safe_load((COMPONENT / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    return {"groups": rule["spec"]["groups"]}


def alerts() -> list[dict[str, object]]:
    return [r for g in rule_groups()["groups"] for r in g["rules"] if "alert" in r]  # type: ignore[attr-defined]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: `make system-deps` installs it (Debian prometheus)")
    return found


def test_promtool_accepts_the_rules_and_its_tests_pass(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups(), sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path / "alerts.test.yaml")
    check = subprocess.run(
        [promtool(), "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [promtool(), "test", "rules", "alerts.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_alert_is_tested_and_has_a_runbook_section() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    lines = OPERATIONS.read_text().splitlines()
    headings = {line[4:].strip().lower() for line in lines if line.startswith("### ")}
    for alert in alerts():
        name = str(alert["alert"])
        assert name in tested, f"{name} has no promtool test"
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook"] == f"docs/operations.md#{name.lower()}"
        assert name.lower() in headings, f"docs/operations.md has no section for {name}"
        assert alert["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]


def exported_names() -> set[str]:
    """Every sample name the services' registries can produce."""
    sources = [
        ServiceMetrics("photosearch.test.v1.Test").registry,
        EmbedderMetrics().registry,
        SearchMetrics().registry,
        CatalogMetrics().registry,
        GatewayMetrics().registry,
    ]
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for source in sources:
        for family in source.collect():
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    # Read at scrape time from the embedder's status.
    names.update({"embedder_model_ready", "embedder_model_loaded", "embedder_runtime_info"})
    return names


def test_the_dashboard_and_the_rules_read_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [str(a["expr"]) for a in alerts()]
    exported = exported_names()
    used = {name for expr in exprs for name in OWN.findall(expr)}
    assert used and used <= exported, used - exported


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "photosearch"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'namespace=~"$namespace"' in target["expr"], panel["title"]


@pytest.mark.parametrize("name", ["prod+tls+keda", "dev+next+tls+keda"])
def test_the_component_scrapes_every_pod_on_its_metrics_port_and_never_the_public_one(
    renders: dict[str, Render], name: str
) -> None:
    render = renders[name]
    monitors = render.kinds("PodMonitor")
    assert {name_of(m) for m in monitors} == {"photosearch", "nats", "database"}
    assert {m["metadata"]["labels"]["release"] for m in monitors} == {"kube-prometheus-stack"}
    assert render.get("PrometheusRule", "photosearch")["metadata"]["labels"]["release"] == (
        "kube-prometheus-stack"
    )
    # The services' own port, NATS's exporter sidecar, the dev Postgres's postgres_exporter.
    ports = {"nats": 7777, "database": 9187}
    for workload in render.workloads:
        if workload["kind"] == "Job":
            continue
        labels = pod_labels(workload)
        scraped = [m for m in monitors if selects(m["spec"]["selector"]["matchLabels"], labels)]
        assert scraped, f"{name_of(workload)} is not scraped"
        expected = ports.get(labels["app.kubernetes.io/component"], 9464)
        assert container_ports(workload).get("metrics") == expected, name_of(workload)
    # The gateway's figures are on their own port, which neither its Service nor the Ingress
    # routes to: /metrics is not public.
    gateway = render.get("Deployment", "gateway")
    assert config_maps_of(render.objects, gateway)["GATEWAY_METRICS_PORT"] == "9464"
    service_ports = render.get("Service", "gateway")["spec"]["ports"]
    assert all(p["targetPort"] != "metrics" and p["port"] != 9464 for p in service_ports)
    for ingress in render.kinds("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"] in ({"name": "http"}, {"number": 8080})
    policy = render.get("NetworkPolicy", "metrics-from-monitoring")
    (peer,) = policy["spec"]["ingress"][0]["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}


def test_the_monitoring_settings_are_substituted(tmp_path: Path, k8s_tree: Path) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(k8s_tree, tree)
    enable_components(tree, "prod", ["monitoring"])
    settings = tree / "overlays" / "prod" / "monitoring-settings.yaml"
    text = settings.read_text().replace("namespace: monitoring", "namespace: observability")
    settings.write_text(text.replace("kube-prometheus-stack", "prom"))
    render = Render("prod+monitoring", kustomize(tree / "overlays" / "prod"))
    assert not render.has("ConfigMap", "monitoring-settings")  # local-config: not applied
    policy = render.get("NetworkPolicy", "metrics-from-monitoring")
    selector = policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": "observability"}
    for kind in ("PodMonitor", "PrometheusRule"):
        assert {o["metadata"]["labels"]["release"] for o in render.kinds(kind)} == {"prom"}
    assert all(o["metadata"]["namespace"] == "photosearch" for o in render.kinds("PodMonitor"))
