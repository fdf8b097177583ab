"""The rendered objects fit together: Services select pods and name their ports, every
reference (ConfigMap, Secret, volume, service account, address) resolves, disruption
budgets and autoscalers point at real workloads, and every copy of the model name agrees."""

import base64
from urllib.parse import urlsplit

import pytest

from photosearch.common.subjects import EMBED_JOBS_STREAM, embed_consumer_name
from tests.unit.deploy.manifests import (
    OUT_OF_BAND,
    SERVICES,
    Obj,
    Render,
    all_containers,
    config_maps_of,
    container_ports,
    ident,
    label_selector_matches,
    name_of,
    pod_labels,
    pod_spec,
    selects,
)


def test_every_service_selects_exactly_one_workload_and_its_named_ports(render: Render) -> None:
    pods = render.kinds("Deployment", "StatefulSet")
    for service in render.kinds("Service"):
        selector = service["spec"]["selector"]
        selected = [w for w in pods if selects(selector, pod_labels(w))]
        assert len(selected) == 1, f"{ident(service)} selects {[ident(w) for w in selected]}"
        ports = container_ports(selected[0])
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"{ident(service)}: no port {port['targetPort']}"
            assert port["name"] == port["targetPort"], ident(service)


def test_workload_selectors_never_overlap(render: Render) -> None:
    pods = render.kinds("Deployment", "StatefulSet")
    for workload in pods:
        selector = workload["spec"]["selector"]
        assert label_selector_matches(selector, pod_labels(workload)), ident(workload)
        others = [w for w in pods if w is not workload]
        clashes = [ident(o) for o in others if label_selector_matches(selector, pod_labels(o))]
        assert not clashes, f"{ident(workload)} would also own the pods of {clashes}"


@pytest.mark.parametrize("service", list(SERVICES))
def test_services_expose_their_port_under_its_name(render: Render, service: str) -> None:
    _, port_name, port = SERVICES[service]
    svc = render.get("Service", service)
    assert [(p["name"], p.get("appProtocol")) for p in svc["spec"]["ports"]] == [
        (port_name, port_name)
    ]
    workload = render.get("Deployment", service)
    # Beside it only /metrics, which no Service exposes (components/monitoring scrapes the pods).
    assert container_ports(workload) == {port_name: port, "metrics": 9464}


def test_every_address_in_the_configuration_names_a_service_port(render: Render) -> None:
    ports = {(name_of(s), p["port"]) for s in render.kinds("Service") for p in s["spec"]["ports"]}
    checked = 0
    for config in render.kinds("ConfigMap"):
        for key, value in config.get("data", {}).items():
            if key.endswith("_ADDR"):
                host, _, port = value.rpartition(":")
            elif key.endswith("_NATS_URL"):
                parts = urlsplit(value)
                host, port = str(parts.hostname), str(parts.port)
            else:
                continue
            assert (host, int(port)) in ports, f"{name_of(config)}: {key}={value}"
            checked += 1
    assert checked >= 10


def test_dev_database_urls_reach_the_dev_postgres_with_the_roles_it_creates(
    renders: dict[str, Render],
) -> None:
    dev = renders["dev"]

    def secret(prefix: str) -> dict[str, str]:
        matches = [s for s in dev.kinds("Secret") if name_of(s).startswith(prefix + "-")]
        assert len(matches) == 1
        return {k: base64.b64decode(v).decode() for k, v in matches[0]["data"].items()}

    roles = secret("postgres-secrets")
    postgres = dev.get("Service", "postgres")
    for service in ("catalog", "search"):
        url = urlsplit(secret(f"{service}-db-app")["uri"])
        assert (url.hostname, url.port) == ("postgres", postgres["spec"]["ports"][0]["port"])
        assert (url.username, url.path) == (service, f"/{service}")
        assert url.password == roles[f"{service}-password"]


def _secret_names(workload: Obj) -> set[str]:
    names = {
        v["secret"]["secretName"] for v in pod_spec(workload).get("volumes", []) if "secret" in v
    }
    for _, c in all_containers(workload):
        for entry in c.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        for source in c.get("envFrom", []):
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
    return names


def test_every_reference_resolves(render: Render) -> None:
    """ConfigMaps, PVCs and service accounts are rendered; Secrets are rendered, or made by
    cert-manager or CloudNativePG, or are the documented out-of-band ones."""
    secrets = {name_of(s) for s in render.kinds("Secret")}
    secrets |= {c["spec"]["secretName"] for c in render.kinds("Certificate")}
    secrets |= {f"{name_of(c)}-app" for c in render.kinds("Cluster")}
    config_maps = {name_of(c) for c in render.kinds("ConfigMap")}
    claims = {name_of(c) for c in render.kinds("PersistentVolumeClaim")}
    accounts = {name_of(a) for a in render.kinds("ServiceAccount")}
    for workload in render.workloads:
        spec = pod_spec(workload)
        if "serviceAccountName" in spec:
            assert spec["serviceAccountName"] in accounts, ident(workload)
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, ident(workload)
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, ident(workload)
        for _, c in all_containers(workload):
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, ident(workload)
        missing = _secret_names(workload) - secrets - OUT_OF_BAND
        assert not missing, f"{ident(workload)} needs Secrets nobody makes: {missing}"
    for ingress in render.kinds("Ingress"):
        for tls in ingress["spec"].get("tls", []):
            assert tls["secretName"] in secrets | OUT_OF_BAND


def test_production_renders_no_secrets(renders: dict[str, Render]) -> None:
    """Secrets come from the operator or the secret manager, never from the repository, and
    `kubectl apply` must not overwrite the real ones with anything."""
    for name, render in renders.items():
        if not name.startswith("dev"):
            assert not render.kinds("Secret"), name


def test_disruption_budgets_cover_every_service_and_nats(render: Render) -> None:
    covered = set()
    for budget in render.kinds("PodDisruptionBudget"):
        selector = budget["spec"]["selector"]
        owners = [w for w in render.workloads if label_selector_matches(selector, pod_labels(w))]
        assert len(owners) == 1, ident(budget)
        # maxUnavailable keeps node drains possible at any replica count.
        assert budget["spec"].get("maxUnavailable") == 1, ident(budget)
        covered.add(name_of(owners[0]))
    assert {"search", "catalog", "gateway", "embedder", "fallback", "nats"} <= covered


def test_the_embedder_has_exactly_one_autoscaler(render: Render) -> None:
    deployments = {name_of(d): d for d in render.kinds("Deployment")}
    targets = [h["spec"]["scaleTargetRef"]["name"] for h in render.kinds("HorizontalPodAutoscaler")]
    targets += [s["spec"]["scaleTargetRef"]["name"] for s in render.kinds("ScaledObject")]
    assert targets.count("embedder") == 1
    for target in targets:
        assert target in deployments
        for c in pod_spec(deployments[target])["containers"]:
            assert "cpu" in c["resources"]["requests"]  # utilisation is relative to it
    for autoscaler in render.kinds("HorizontalPodAutoscaler"):
        assert autoscaler["spec"]["minReplicas"] >= 1
    for scaled in render.kinds("ScaledObject"):
        # Rebuilds are refused while no embed-capable worker is online.
        assert scaled["spec"]["minReplicaCount"] >= 1


def test_keda_follows_the_queue_consumer_of_the_configured_model(render: Render) -> None:
    for scaled in render.kinds("ScaledObject"):
        embedder = render.get("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        model = config_maps_of(render.objects, embedder)["EMBED_MODEL"]
        (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "nats-jetstream"]
        assert trigger["metadata"]["stream"] == EMBED_JOBS_STREAM
        assert trigger["metadata"]["consumer"] == embed_consumer_name(model)
        endpoint = trigger["metadata"]["natsServerMonitoringEndpoint"]
        host, _, port = endpoint.partition(":")
        service, namespace = host.split(".")[:2]
        monitor = render.get("Service", service)
        assert monitor["spec"].get("clusterIP") == "None"  # one address per server
        assert int(port) in [p["port"] for p in monitor["spec"]["ports"]]
        assert namespace == render.get("Deployment", "embedder")["metadata"]["namespace"]


def test_every_copy_of_the_model_agrees(render: Render) -> None:
    """search's default model, the embedder's, the queue consumer, the export Job and the
    cache folder the workers and the gateway mount."""
    embedder = render.get("Deployment", "embedder")
    env = config_maps_of(render.objects, embedder)
    search_env = config_maps_of(render.objects, render.get("Deployment", "search"))
    assert search_env["SEARCH_DEFAULT_MODEL_ID"] == env["EMBED_MODEL"]

    def cache_mounts(workload: Obj) -> set[tuple[str, str]]:
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod_spec(workload).get("volumes", [])
            if "persistentVolumeClaim" in v
        }
        return {
            (claims[m["name"]], m["mountPath"])
            for _, c in all_containers(workload)
            for m in c.get("volumeMounts", [])
            if m["name"] in claims
        }

    expected = {("model-cache", env["EMBED_MODEL_CACHE_DIR"])}
    gateway = render.get("Deployment", "gateway")
    assert (
        cache_mounts(gateway)
        == {("model-cache", config_maps_of(render.objects, gateway)["GATEWAY_MODEL_DIR"])}
        == expected
    )
    exporters = [j for j in render.kinds("Job") if pod_labels(j).get(
        "app.kubernetes.io/component") == "model-export"]  # fmt: skip
    workers = [d for d in render.kinds("Deployment") if pod_labels(d).get(
        "app.kubernetes.io/component") == "embedder"]  # fmt: skip
    assert exporters and workers
    for workload in exporters + workers:
        assert cache_mounts(workload) == expected, ident(workload)
    # Each worker's model has an export Job, and only the Jobs write to the cache.
    models = {config_maps_of(render.objects, w)["EMBED_MODEL"] for w in workers}
    assert models == {config_maps_of(render.objects, j)["EMBED_MODEL"] for j in exporters}
    for workload in [*workers, gateway]:
        for _, c in all_containers(workload):
            for mount in c.get("volumeMounts", []):
                if mount["mountPath"] == env["EMBED_MODEL_CACHE_DIR"]:
                    assert mount.get("readOnly") is True, ident(workload)


def test_the_model_id_is_one_the_embedder_accepts_as_is(render: Render) -> None:
    """EMBED_MODEL carries the recipe (name@recipe), so the init container can find the
    export by the model id alone and a different recipe refuses to start."""
    models = pytest.importorskip("photosearch_embedder.models")
    for worker in render.kinds("Deployment"):
        if pod_labels(worker).get("app.kubernetes.io/component") == "embedder":
            model = config_maps_of(render.objects, worker)["EMBED_MODEL"]
            assert models.spec_for(model).model_id == model


def test_embedder_copies_are_configured_alike(renders: dict[str, Render]) -> None:
    """embedder-next differs from the embedder only in its model and its pod label, whatever
    other components (tls, gpu, keda) the overlay has."""

    def shape(workload: Obj) -> object:
        spec = pod_spec(workload)
        return (
            spec.get("nodeSelector"),
            spec.get("tolerations"),
            sorted(v["name"] for v in spec["volumes"]),
            [(c["image"], c["resources"], c.get("readinessProbe")) for c in spec["containers"]],
        )

    checked = 0
    for render in renders.values():
        workers = [
            d for d in render.kinds("Deployment")
            if pod_labels(d).get("app.kubernetes.io/component") == "embedder"
        ]  # fmt: skip
        if len(workers) > 1:
            assert len({repr(shape(w)) for w in workers}) == 1, render.name
            models = {config_maps_of(render.objects, w)["EMBED_MODEL"] for w in workers}
            assert len(models) == len(workers), render.name
            checked += 1
    assert checked >= 2


def test_every_service_declares_streams_with_the_same_replicas(render: Render) -> None:
    """They all update the stream configuration at start: disagreeing values would flip it."""
    values = {
        value
        for config in render.kinds("ConfigMap")
        for key, value in config.get("data", {}).items()
        if key.endswith("_NATS_STREAM_REPLICAS")
    }
    assert len(values) == 1, values
    servers = render.get("StatefulSet", "nats")["spec"]["replicas"]
    assert int(values.pop()) == servers  # 1 on the dev server, 3 on the prod cluster


def test_gpu_embedders_roll_out_without_a_surge_pod(renders: dict[str, Render]) -> None:
    """One GPU per pod: a surge pod would wait for a GPU that the old pod holds."""
    for name in ("gpu", "gpu+next"):
        for deployment in renders[name].kinds("Deployment"):
            if name_of(deployment).startswith("embedder"):
                rolling = deployment["spec"]["strategy"]["rollingUpdate"]
                assert rolling == {"maxSurge": 0, "maxUnavailable": 1}, (name, ident(deployment))
    cpu = {name_of(d): d for d in renders["prod"].kinds("Deployment")}["embedder"]
    assert cpu["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1  # CPUs are there to surge


def test_gpu_embedders_scale_on_the_queue_alone(renders: dict[str, Render]) -> None:
    """KEDA on the embed queue's backlog; no autoscaler follows a GPU worker's CPU."""
    for name in ("gpu", "gpu+next"):
        render = renders[name]
        embedders = {
            name_of(d) for d in render.kinds("Deployment") if name_of(d).startswith("embedder")
        }
        assert not [
            h for h in render.kinds("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] in embedders
        ], name  # fmt: skip
        (scaled,) = render.kinds("ScaledObject")
        assert scaled["spec"]["scaleTargetRef"]["name"] == "embedder"
        assert [t["type"] for t in scaled["spec"]["triggers"]] == ["nats-jetstream"], name
    # CPU workers keep the CPU trigger beside the queue's.
    (cpu,) = renders["prod+tls+keda"].kinds("ScaledObject")
    assert {t["type"] for t in cpu["spec"]["triggers"]} == {"nats-jetstream", "cpu"}


def test_nats_and_postgres_pods_export_metrics_on_the_port_named_metrics(
    render: Render,
) -> None:
    """The names a PodMonitor scrapes: NATS's exporter on 7777, Postgres's on 9187 (the dev
    StatefulSet's exporter; CloudNativePG's instances serve theirs under the same name)."""
    nats = render.get("StatefulSet", "nats")
    assert container_ports(nats)["metrics"] == 7777
    (exporter,) = [c for c in pod_spec(nats)["containers"] if c["name"] == "metrics"]
    assert exporter["image"].startswith("natsio/prometheus-nats-exporter:")
    monitor = container_ports(nats)["monitor"]
    assert exporter["args"][-1] == f"http://localhost:{monitor}"
    assert {"-varz", "-connz", "-jsz=all", "-healthz"} <= set(exporter["args"])
    assert exporter["args"][exporter["args"].index("-port") + 1] == "7777"
    if render.has("StatefulSet", "postgres"):
        postgres = render.get("StatefulSet", "postgres")
        assert container_ports(postgres)["metrics"] == 9187
        (exporter,) = [c for c in pod_spec(postgres)["containers"] if c["name"] == "metrics"]
        assert exporter["image"].startswith("quay.io/prometheuscommunity/postgres-exporter:")
        env = {e["name"]: e for e in exporter["env"]}
        (server,) = [c for c in pod_spec(postgres)["containers"] if c["name"] == "postgres"]
        server_env = {e["name"]: e for e in server["env"]}
        assert env["DATA_SOURCE_USER"]["value"] == server_env["POSTGRES_USER"]["value"]
        assert env["DATA_SOURCE_PASS"]["valueFrom"] == server_env["POSTGRES_PASSWORD"]["valueFrom"]
        port = container_ports(postgres)["postgres"]
        assert env["DATA_SOURCE_URI"]["value"].startswith(f"127.0.0.1:{port}/")


def test_the_nats_quorum_never_shares_a_node(renders: dict[str, Render]) -> None:
    for name in ("prod", "gpu", "prod+tls+keda"):
        nats = renders[name].get("StatefulSet", "nats")
        if nats["spec"]["replicas"] < 3:
            continue
        rules = pod_spec(nats)["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert any(
            r["topologyKey"] == "kubernetes.io/hostname"
            and label_selector_matches(r["labelSelector"], pod_labels(nats))
            for r in rules
        ), name


def test_the_production_ingress_names_its_class(renders: dict[str, Render]) -> None:
    for name in ("prod", "gpu", "prod+tls+keda"):
        (ingress,) = renders[name].kinds("Ingress")
        assert ingress["spec"]["ingressClassName"], name


def test_the_backup_component_archives_every_database_cluster(renders: dict[str, Render]) -> None:
    render = renders["prod+tls+keda"]  # with components/cnpg-backup
    (store,) = render.kinds("ObjectStore")
    clusters = {name_of(c): c for c in render.kinds("Cluster")}
    assert set(clusters) == {"catalog-db", "search-db"}
    servers = set()
    for name, cluster in clusters.items():
        (plugin,) = cluster["spec"]["plugins"]
        assert plugin["isWALArchiver"], name
        assert plugin["parameters"]["barmanObjectName"] == name_of(store), name
        servers.add(plugin["parameters"]["serverName"])
    assert len(servers) == len(clusters)  # one bucket, a folder each
    scheduled = {b["spec"]["cluster"]["name"]: b for b in render.kinds("ScheduledBackup")}
    assert set(scheduled) == set(clusters)
    for backup in scheduled.values():
        assert backup["spec"]["method"] == "plugin"
        assert backup["spec"]["pluginConfiguration"]["name"] == plugin["name"]
    # The same namespace as the clusters it backs up.
    namespaces = {
        o["metadata"].get("namespace") for o in [store, *clusters.values(), *scheduled.values()]
    }
    assert len(namespaces) == 1
    assert not renders["prod"].kinds("ObjectStore")  # opt-in: it needs a bucket
