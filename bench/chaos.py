"""Chaos soak: the soak's mixed traffic (bench/soak.py: searches by fingerprint with
their thumbnails, a steady ingest of new items with photos) through the whole mesh on
loopback, with two search replicas, while a schedule of faults hits it:

    SIGKILL the embedder, SIGKILL a search replica, SIGKILL catalog (each restarted after
    a few seconds), freeze NATS (SIGSTOP) for 20 s, restart Postgres.

Reports per minute: p50/p99 of each kind and the errors by status code; per fault: the
searches tried and answered while it lasted; at the end the invariants: every catalog
image has exactly one vector of the active model, no vector lacks its image, every image
has exactly one `catalog.image.added` event, and search answered during every fault but
Postgres's own restart.

    make bench-chaos                               # 8 minutes
    .venv/bin/python bench/chaos.py --minutes 5 --searchers 4 --ingest-per-minute 30
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from soak import (  # noqa: E402
    Photos,
    Record,
    Soak,
    mesh_env,
    per_minute,
    prepare,
    sample_machine,
    traffic_arguments,
    wait_embedded,
)

from photosearch_devstack.mesh import Mesh  # noqa: E402
from tests.support.mesh_state import (  # noqa: E402
    approved_image_ids,
    image_added_events,
    vectors_per_image,
)

# (when, as a fraction of the run; fault; seconds it lasts before the repair)
SCHEDULE = (
    (0.12, "kill embedder", 5.0),
    (0.27, "kill search-2", 5.0),
    (0.42, "kill catalog", 5.0),
    (0.57, "freeze nats", 20.0),
    (0.72, "restart postgres", 0.0),
)
SETTLE = 5.0  # seconds after the repair that still count as the fault's window


@dataclass
class Fault:
    name: str
    began: float  # seconds since the soak began
    repaired: float = 0.0
    ended: float = 0.0  # every process serving again (+ SETTLE)


@dataclass
class Chaos:
    mesh: Mesh
    run: Soak
    faults: list[Fault] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.run.began

    async def schedule(self, minutes: float) -> None:
        for at, name, lasts in SCHEDULE:
            await asyncio.sleep(max(0.0, self.run.began + at * minutes * 60 - time.monotonic()))
            fault = Fault(name, self.now())
            self.faults.append(fault)
            await self.inflict(name, lasts)
            fault.repaired = self.now()
            await asyncio.to_thread(self.mesh.wait_until_serving, 120)
            fault.ended = self.now() + SETTLE
            print(f"  {fault.name}: {fault.began:.0f} s, serving again after "
                  f"{fault.ended - SETTLE - fault.began:.1f} s")  # fmt: skip

    async def inflict(self, name: str, lasts: float) -> None:
        mesh = self.mesh
        action, target = name.split(" ", 1)
        if action == "kill":
            process = mesh.processes[target]  # kept: its RSS reads as NaN while it is down
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait)
            await asyncio.sleep(lasts)
            await asyncio.to_thread(mesh.start_service, target)
        elif action == "freeze":
            assert mesh.nats and mesh.nats.process
            os.kill(mesh.nats.process.pid, signal.SIGSTOP)
            await asyncio.sleep(lasts)
            os.kill(mesh.nats.process.pid, signal.SIGCONT)
        elif action == "restart":
            assert mesh.postgres
            await asyncio.to_thread(mesh.postgres.stop, "fast")
            await asyncio.to_thread(mesh.postgres.start)


def errors_by_code(records: list[Record]) -> dict[str, int]:
    """Failed requests by HTTP status ("no answer": the connection itself failed)."""
    failed = [r for r in records if r.status == 0 or r.status >= 400]
    codes = Counter("no answer" if r.status == 0 else str(r.status) for r in failed)
    return dict(sorted(codes.items()))


def windows(faults: list[Fault], records: list[Record]) -> list[dict[str, Any]]:
    out = []
    for fault in faults:
        searches = [
            r for r in records if r.kind == "search" and fault.began <= r.started < fault.ended
        ]
        during = [r for r in records if fault.began <= r.started < fault.ended]
        out.append({
            "fault": fault.name,
            "from_s": round(fault.began, 1),
            "serving_again_after_s": round(fault.ended - SETTLE - fault.began, 1),
            "searches": len(searches),
            "answered": sum(r.status == 200 for r in searches),
            "errors": errors_by_code(during),
        })  # fmt: skip
    return out


def invariants(mesh: Mesh, model_id: str) -> dict[str, Any]:
    images = approved_image_ids(mesh)
    vectors = vectors_per_image(mesh, model_id)
    added = image_added_events(mesh)
    return {
        "catalog_images": len(images),
        "without_vector": len(images - set(vectors)),
        "vector_without_image": len(set(vectors) - images),
        "more_than_one_vector": sum(1 for n in vectors.values() if n > 1),
        "not_exactly_one_added_event": sum(1 for i in images if added.get(i, 0) != 1),
    }


async def chaos(args: argparse.Namespace, mesh: Mesh) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=mesh.gateway_url, timeout=30, headers=mesh.admin_auth
    ) as http:
        model_id, queries = await prepare(mesh, http, args.seed_items)
        print(f"seeded {args.seed_items} items ({model_id}); chaos soak {args.minutes} min ...")
        run = Soak(http, model_id, queries, Photos(seed=11))
        until, tasks = run.start(args)
        state = Chaos(mesh, run)
        tasks.append(asyncio.create_task(state.schedule(args.minutes)))
        _, cpu = await sample_machine(mesh, until, run.began, args.sample_seconds)
        await asyncio.gather(*tasks)
        admin = mesh.admin_auth
        settled = True
        try:
            await wait_embedded(http, admin, timeout=180)
        except TimeoutError as exc:
            settled = False
            run.errors.append(str(exc))
    minutes = max(1, int(args.minutes))
    rows = per_minute(run.records, cpu, minutes)
    for row in rows:
        start, end = (row["minute"] - 1) * 60, row["minute"] * 60
        row["errors"] = errors_by_code([r for r in run.records if start <= r.started < end])
    faults = windows(state.faults, run.records)
    in_faults = [(f.began, f.ended) for f in state.faults]
    calm = [r for r in run.records if not any(a <= r.started < b for a, b in in_faults)]
    held = await asyncio.to_thread(invariants, mesh, model_id)  # it runs its own loop
    answered = all(w["answered"] > 0 for w in faults if w["fault"] != "restart postgres")
    return {
        "minutes": args.minutes,
        "searchers": args.searchers,
        "ingest_per_minute": args.ingest_per_minute,
        "model_id": model_id,
        "requests": len(run.records),
        "ingested_photos": run.ingested,
        "settled": settled,
        "per_minute": rows,
        "faults": faults,
        "errors_outside_faults": errors_by_code(calm),
        "invariants": held,
        "passed": settled
        and answered
        and len(state.faults) == len(SCHEDULE)
        and not any(v for k, v in held.items() if k != "catalog_images"),
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"chaos soak: {result['minutes']} min, {result['searchers']} searchers, "
        f"{result['ingest_per_minute']:g} photos/min, model {result['model_id']}; "
        f"{result['requests']} requests, {result['ingested_photos']} photos ingested",
        "",
        "| minute | searches | search p50 ms | search p99 ms | ingests | ingest p99 ms "
        "| errors by code |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for row in result["per_minute"]:
        s, i = row["search"], row["ingest"]
        codes = ", ".join(f"{k}: {v}" for k, v in row["errors"].items()) or "none"
        lines.append(f"| {row['minute']} | {s['count']} | {s['p50_ms']} | {s['p99_ms']} | "
                     f"{i['count']} | {i['p99_ms']} | {codes} |")  # fmt: skip
    lines += ["", "| fault | at s | serving again after s | searches | answered | errors by code |",
              "|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for w in result["faults"]:
        codes = ", ".join(f"{k}: {v}" for k, v in w["errors"].items()) or "none"
        lines.append(f"| {w['fault']} | {w['from_s']} | {w['serving_again_after_s']} | "
                     f"{w['searches']} | {w['answered']} | {codes} |")  # fmt: skip
    calm = ", ".join(f"{k}: {v}" for k, v in result["errors_outside_faults"].items()) or "none"
    lines += [
        "",
        f"errors outside the fault windows: {calm}",
        f"invariants: {result['invariants']}",
    ]
    return "\n".join(lines)


def main() -> int:
    args = traffic_arguments(__doc__.split("\n\n")[0], minutes=8.0).parse_args()
    # A killed worker's jobs come back sooner than the default 60 s.
    env = {**mesh_env(args), "EMBED_ACK_WAIT_SECONDS": "10"}
    with tempfile.TemporaryDirectory(prefix="photosearch-chaos-") as tmp:
        mesh = Mesh(Path(tmp) / "data", extra_env=env, replicas={"search": 2})
        try:
            mesh.start(timeout=600)
            result = asyncio.run(chaos(args, mesh))
        finally:
            mesh.stop()
    print(report(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    print("PASS" if result["passed"] else "FAIL: an invariant broke, or search went dark")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
