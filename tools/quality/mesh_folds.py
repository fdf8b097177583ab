"""Cross-validation through the real mesh: for each fold, search restarts with the
parameters chosen on the other folds' items (offline, tools/quality/tuning.py, on the
same evidence the services compute), and the fold's own queries are searched as the
page searches them, twice: with their item in the catalog (the dataset's tag as
filter), and with it left out (a tag every item of the other folds carries, so the
catalog searched holds everything but this fold's items: photos of things the catalog
does not have)."""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import field_mask_pb2

from photosearch.catalog.v1 import catalog_pb2
from photosearch_devstack.mesh import Mesh
from tools.quality.datasets import Dataset
from tools.quality.evidence import Params
from tools.quality.mesh_mode import Answer, MeshClient
from tools.quality.techniques import SERVICE_RERANK
from tools.quality.tuning import Scored


def outside_tag(fold: int) -> str:
    return f"without-fold-{fold}"


@dataclass(frozen=True)
class MeshHeld:
    dataset: str
    truth: str
    fold: int
    inside: Answer
    outside: Answer

    def scored(self) -> Scored:
        return Scored(
            self.dataset,
            self.inside.ranking.rank,
            self.inside.band,
            self.truth in self.inside.matched,
            self.outside.band,
        )


def tag_folds(client: MeshClient, fold_of: dict[tuple[str, str], int], folds: int) -> None:
    """Every item gets the tag of each fold it is not in (UpdateItem, as an admin would),
    then search is waited for until its filters see them all."""
    for (dataset, item), fold in sorted(fold_of.items()):
        uuid = client.index.item_ids[(dataset, item)]
        current = client.catalog.GetItem(catalog_pb2.GetItemRequest(id=uuid), timeout=30)
        tags = [*current.tags, *(outside_tag(f) for f in range(folds) if f != fold)]
        client.catalog.UpdateItem(
            catalog_pb2.UpdateItemRequest(
                item=catalog_pb2.Item(id=uuid, tags=tags),
                update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
            ),
            timeout=30,
        )
    expected = {
        (dataset, f): sum(1 for (d, _), g in fold_of.items() if d == dataset and g != f)
        for dataset in {d for d, _ in fold_of}
        for f in range(folds)
    }
    deadline = time.monotonic() + 120
    while True:
        seen = {key: client.count_items([key[0], outside_tag(key[1])]) for key in expected}
        if seen == expected:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"fold tags not searchable after 120 s: {seen} != {expected}")
        time.sleep(0.5)


def restart_search(mesh: Mesh, env: dict[str, str], timeout: float = 120) -> None:
    mesh.stop_service("search")
    mesh.extra_env.update(env)
    mesh.start_service("search")
    mesh.wait_until_serving(timeout)


def run_folds(
    mesh: Mesh,
    client: MeshClient,
    datasets: Sequence[Dataset],
    fold_of: dict[tuple[str, str], int],
    chosen: Sequence[Params],
) -> list[MeshHeld]:
    """Each fold's queries with that fold's parameters; search's own defaults come back
    afterwards (the parameters of the last fold are undone)."""
    tag_folds(client, fold_of, len(chosen))
    held: list[MeshHeld] = []
    defaults = {key: mesh.extra_env.get(key) for key in chosen[0].env()}
    for fold, params in enumerate(chosen):
        restart_search(mesh, params.env())
        top_k = params.rerank.top_k
        for dataset in datasets:
            k = min(100, len(dataset.catalog_items))
            for q in dataset.queries:
                if fold_of[(dataset.name, q.item)] != fold:
                    continue
                data = q.path.read_bytes()
                inside = client.rank(q, data, [dataset.name], k, top_k=top_k)[SERVICE_RERANK]
                outside_tags = [dataset.name, outside_tag(fold)]
                outside = client.rank(q, data, outside_tags, k, top_k=top_k)[SERVICE_RERANK]
                held.append(MeshHeld(dataset.name, q.item, fold, inside, outside))
    for key, value in defaults.items():
        if value is None:
            mesh.extra_env.pop(key, None)
        else:
            mesh.extra_env[key] = value
    restart_search(mesh, {})
    return held
