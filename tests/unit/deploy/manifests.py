"""Reading rendered Kubernetes manifests: workloads, pod specs, containers, selectors."""

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
Obj = dict[str, Any]

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
# The oldest Kubernetes docs/deploy.md supports (validated beside the newest known).
OLDEST_SUPPORTED = "1.30.0"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
# Secrets neither rendered nor made by an operator: the ones docs/deploy.md has you create.
OUT_OF_BAND = {"catalog-secrets", "gateway-secrets", "nats-auth", "photosearch-ingress-tls"}
# The folder under overlays/ of the overlay docs/deploy.md shows for layering on prod.
LAYERED = "layered"
# The photosearch services: name -> (env prefix, port name, port).
SERVICES = {
    "catalog": ("CATALOG_", "grpc", 50051),
    "search": ("SEARCH_", "grpc", 50052),
    "embedder": ("EMBED_", "grpc", 50053),
    "fallback": ("FALLBACK_", "grpc", 50054),
    "gateway": ("GATEWAY_", "http", 8080),
}


def kustomize(directory: Path) -> list[Obj]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError(
            "kubectl (with its built-in kustomize) is needed to render deploy/k8s: "
            "https://kubernetes.io/docs/tasks/tools/"
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def documented_overlay() -> str:
    """The kustomization docs/deploy.md gives as the way to layer an overlay on prod."""
    blocks = re.findall(r"```yaml\n(.*?)```", DEPLOY_DOC.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "kind: Kustomization" in b and "../prod/release" in b]
    return str(block)


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def ident(obj: Obj) -> str:
    return f"{obj['kind']}/{name_of(obj)}"


def of_kind(objs: list[Obj], *kinds: str) -> list[Obj]:
    return [o for o in objs if o["kind"] in kinds]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objs if o["kind"] == kind and name_of(o) == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_template(workload: Obj) -> Obj:
    template: Obj = workload["spec"]["template"]
    return template


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = pod_template(workload)["spec"]
    return spec


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = pod_template(workload)["metadata"].get("labels", {})
    return labels


def all_containers(workload: Obj) -> Iterator[tuple[str, Obj]]:
    """("init"|"main", container) for every container of the workload's pods."""
    spec = pod_spec(workload)
    for container in spec.get("initContainers", []):
        yield "init", container
    for container in spec["containers"]:
        yield "main", container


def container_ports(workload: Obj) -> dict[str, int]:
    return {
        port["name"]: port["containerPort"]
        for _, c in all_containers(workload)
        for port in c.get("ports", [])
        if "name" in port
    }


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def label_selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions); {} matches everything."""
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def config_maps_of(objs: list[Obj], workload: Obj) -> dict[str, str]:
    """The environment a container gets from its envFrom ConfigMaps (first container)."""
    env: dict[str, str] = {}
    for source in pod_spec(workload)["containers"][0].get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(objs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in pod_spec(workload)["containers"][0].get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
    return env


_QUANTITY = re.compile(r"^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {
    None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
}  # fmt: skip


def quantity(value: str | int | float) -> float:
    match = _QUANTITY.match(str(value))
    assert match, f"not a Kubernetes quantity: {value!r}"
    return float(match.group(1)) * _FACTORS[match.group(2)]


@dataclass(frozen=True)
class Render:
    """One overlay (maybe with extra components) rendered with kubectl kustomize."""

    name: str
    objects: list[Obj]

    def kinds(self, *kinds: str) -> list[Obj]:
        return of_kind(self.objects, *kinds)

    def get(self, kind: str, name: str) -> Obj:
        return find(self.objects, kind, name)

    def has(self, kind: str, name: str) -> bool:
        return any(o["kind"] == kind and name_of(o) == name for o in self.objects)

    @property
    def workloads(self) -> list[Obj]:
        return self.kinds(*WORKLOAD_KINDS)
