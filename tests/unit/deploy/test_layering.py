"""Overlays layered on prod (overlays/gpu, and an operator's own one as docs/deploy.md shows
it): what their components add comes out like prod's own objects, in prod's namespace and
with prod's images, and the layered render stays what prod renders plus those components."""

from tests.unit.deploy.manifests import (
    Obj,
    Render,
    all_containers,
    documented_overlay,
    ident,
    name_of,
)

# Kinds without a namespace among those photosearch renders.
CLUSTER_SCOPED = {"Namespace"}


def _images(render: Render) -> set[str]:
    return {c["image"] for w in render.workloads for _, c in all_containers(w)}


def _photosearch_images(render: Render) -> set[str]:
    return {i for i in _images(render) if "photosearch-" in i}


def _namespaces(objects: list[Obj]) -> dict[str, str | None]:
    return {
        ident(o): o["metadata"].get("namespace") for o in objects if o["kind"] not in CLUSTER_SCOPED
    }


def test_the_documented_overlay_layers_components_on_prod() -> None:
    overlay = documented_overlay()
    assert "- ../prod\n" in overlay
    components = [line.strip() for line in overlay.splitlines() if "../../components/" in line]
    assert len(components) >= 4
    # release after every component it must reach.
    assert overlay.index("../prod/release") > max(overlay.index(c) for c in components)


def test_what_a_layered_overlay_adds_lands_in_prods_namespace(renders: dict[str, Render]) -> None:
    (namespace,) = {ns for ns in _namespaces(renders["prod"].objects).values()}
    assert namespace
    for name in ("layered", "gpu", "gpu+next"):
        wrong = {o: ns for o, ns in _namespaces(renders[name].objects).items() if ns != namespace}
        assert not wrong, (name, wrong)


def test_what_a_layered_overlay_adds_runs_prods_images(renders: dict[str, Render]) -> None:
    prod = _photosearch_images(renders["prod"])
    assert all(i.startswith("registry.example.com/") and ":" in i for i in prod), prod
    layered = renders["layered"]
    assert layered.has("Deployment", "embedder-next") and layered.has("Job", "model-export-next")
    assert _photosearch_images(layered) == prod
    # gpu: its own tag for every embedder, embedder-next added on top of gpu included.
    for name in ("gpu", "gpu+next"):
        embedders = {i for i in _photosearch_images(renders[name]) if "photosearch-embedder" in i}
        assert embedders == {"registry.example.com/photosearch/photosearch-embedder:0.1.0-cuda"}
        others = _photosearch_images(renders[name]) - embedders
        assert others == {i for i in prod if "photosearch-embedder" not in i}, name
    assert renders["gpu+next"].has("Deployment", "embedder-next")


def test_a_layered_overlay_keeps_everything_prod_renders(renders: dict[str, Render]) -> None:
    """The components change objects (TLS mounts, the KEDA swap) but drop none of prod's but
    the CPU autoscaler KEDA replaces."""
    layered = {ident(o) for o in renders["layered"].objects}
    replaced = {"HorizontalPodAutoscaler/embedder"}
    # Generated ConfigMaps change their hash with their content: compare by name.
    missing = [
        ident(o)
        for o in renders["prod"].objects
        if ident(o) not in layered | replaced and o["kind"] != "ConfigMap"
    ]
    assert not missing, missing
    prod_maps = {name_of(c).rsplit("-", 1)[0] for c in renders["prod"].kinds("ConfigMap")}
    layered_maps = {name_of(c).rsplit("-", 1)[0] for c in renders["layered"].kinds("ConfigMap")}
    assert prod_maps <= layered_maps
