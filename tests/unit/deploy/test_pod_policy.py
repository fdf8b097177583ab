"""What every pod of every overlay must do: run unprivileged on a read-only root, declare
requests and limits, be probed, drain within its grace period, and use pinned images."""

import re

import pytest

from tests.unit.deploy.manifests import (
    SERVICES,
    Obj,
    Render,
    all_containers,
    config_maps_of,
    container_ports,
    ident,
    pod_spec,
    quantity,
)

# The Dockerfiles' USER: manifests must run the images as that same numeric user.
IMAGE_UID = 10001


def _security_setting(workload: Obj, container: Obj, key: str) -> object:
    """A container's securityContext value, falling back to the pod's."""
    own = container.get("securityContext", {})
    if key in own:
        return own[key]
    return pod_spec(workload).get("securityContext", {}).get(key)


def test_every_container_is_unprivileged_on_a_read_only_root(render: Render) -> None:
    problems = []
    for workload in render.workloads:
        spec = pod_spec(workload)
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                problems.append(f"{ident(workload)}: {flag}")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{ident(workload)}: mounts a service account token it never uses")
        for _, c in all_containers(workload):
            where = f"{ident(workload)}/{c['name']}"
            context = c.get("securityContext", {})
            if _security_setting(workload, c, "runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if _security_setting(workload, c, "runAsUser") in (0, None):
                problems.append(f"{where}: no non-zero runAsUser")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped (drop: [ALL])")
            if context.get("capabilities", {}).get("add"):
                problems.append(f"{where}: adds capabilities")
            seccomp = _security_setting(workload, c, "seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    assert not problems, "\n".join(problems)


def test_photosearch_images_run_as_their_own_user_with_a_writable_tmp(render: Render) -> None:
    for workload in render.workloads:
        for kind, c in all_containers(workload):
            if "photosearch-" not in c["image"]:
                continue
            assert _security_setting(workload, c, "runAsUser") == IMAGE_UID, ident(workload)
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            if kind == "main":
                assert "/tmp" in mounts, f"{ident(workload)}/{c['name']} has no writable /tmp"


def test_every_container_declares_requests_and_limits(render: Render) -> None:
    problems = []
    for workload in render.workloads:
        for _, c in all_containers(workload):
            where = f"{ident(workload)}/{c['name']}"
            resources = c.get("resources", {})
            for resource in ("cpu", "memory"):
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                if request is None or limit is None:
                    problems.append(f"{where}: {resource} needs a request and a limit")
                elif quantity(request) > quantity(limit):
                    problems.append(f"{where}: {resource} request {request} > limit {limit}")
    assert not problems, "\n".join(problems)


def test_every_long_running_container_has_readiness_and_liveness_probes(render: Render) -> None:
    for workload in render.kinds("Deployment", "StatefulSet"):
        for c in pod_spec(workload)["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in c, f"{ident(workload)}/{c['name']} has no {probe}"


def _probe_port(probe: Obj) -> object:
    if "grpc" in probe:
        return probe["grpc"]["port"]
    if "exec" in probe:  # components/tls: grpc_health_probe.py PORT NAME TLS_DIR
        command = probe["exec"]["command"]
        assert command[1].endswith("grpc_health_probe.py"), command
        return int(command[2])
    raise AssertionError(f"not a gRPC health probe: {probe}")


@pytest.mark.parametrize("service", [s for s, (_, port, _) in SERVICES.items() if port == "grpc"])
def test_grpc_services_are_ready_only_when_their_health_service_says_serving(
    render: Render, service: str
) -> None:
    for workload in render.kinds("Deployment"):
        if workload["metadata"]["labels"].get("app.kubernetes.io/component") != service:
            continue
        container = pod_spec(workload)["containers"][0]
        grpc_port = container_ports(workload)["grpc"]
        assert _probe_port(container["readinessProbe"]) == grpc_port
        env = config_maps_of(render.objects, workload)
        assert int(env[SERVICES[service][0] + "GRPC_PORT"]) == grpc_port
        # A NOT_SERVING dependency must take the pod out of rotation, never restart it.
        assert "tcpSocket" in container["livenessProbe"], ident(workload)
        tls_dir = env.get(SERVICES[service][0] + "TLS_DIR")
        if tls_dir:  # the kubelet's native gRPC probe cannot speak TLS
            assert "exec" in container["readinessProbe"], ident(workload)
            assert tls_dir in container["readinessProbe"]["exec"]["command"]


def test_the_gateway_is_probed_on_its_health_routes(render: Render) -> None:
    gateway = render.get("Deployment", "gateway")
    container = pod_spec(gateway)["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = config_maps_of(render.objects, gateway)
    assert int(env["GATEWAY_HTTP_PORT"]) == container_ports(gateway)["http"]


def test_pods_get_longer_to_stop_than_the_services_take_to_drain(render: Render) -> None:
    for workload in render.kinds("Deployment"):
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        prefix = SERVICES[component][0]
        env = config_maps_of(render.objects, workload)
        drain = float(env.get(prefix + "SHUTDOWN_GRACE_SECONDS", 10))
        container = pod_spec(workload)["containers"][0]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        budget = pod_spec(workload)["terminationGracePeriodSeconds"]
        assert budget > float(command[1]) + drain, ident(workload)


_PINNED = re.compile(r"^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$")


def test_every_image_is_pinned(render: Render) -> None:
    for workload in render.workloads:
        for _, c in all_containers(workload):
            image = c["image"]
            assert _PINNED.match(image), image
            tag = image.split("@")[0].rpartition(":")[2] if ":" in image else ""
            assert "@sha256:" in image or (tag and tag != "latest"), f"unpinned image {image}"


def test_embedder_workers_do_not_oversubscribe_the_node(render: Render) -> None:
    """onnxruntime (and torch in the export) start one thread per core of the node."""
    for workload in render.workloads:
        for kind, c in all_containers(workload):
            if "photosearch-embedder" not in c["image"] or kind == "init":
                continue
            threads = {e["name"]: e for e in c.get("env", [])}
            variable = "OMP_NUM_THREADS" if c["name"] == "export" else "EMBED_INFERENCE_THREADS"
            field = threads[variable]["valueFrom"]["resourceFieldRef"]
            assert field == {"containerName": c["name"], "resource": "limits.cpu", "divisor": "1"}
