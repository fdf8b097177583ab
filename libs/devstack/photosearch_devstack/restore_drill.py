"""Restore drill: search's data is derived from catalog's, so losing it loses nothing.

On a dev stack of its own (embedded Postgres with WAL archiving, NATS, every service):

1. photos go in through the gateway and are indexed;
2. **dump and restore**: catalog's database is dumped (`pg_dump`), both databases are
   dropped, catalog is restored from the dump, search starts empty, and a rebuild
   re-embeds every image;
3. **point in time**: after a base backup (`pg_basebackup`), more photos go in, a restore
   point is named, then more photos go in and an item is deleted; the server is recovered
   to the restore point (archived WAL replayed), search's database is dropped again and
   rebuilt.

After each rebuild it checks, in the databases themselves, that every catalog image has
exactly one fingerprint per model and no fingerprint lacks its image, and after the
recovery that catalog holds exactly what it held at the restore point.

    make restore-drill                      # = python -m photosearch_devstack.restore_drill
    python -m photosearch_devstack.restore_drill --photos 20 --keep .data/drill"""

import argparse
import io
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from PIL import Image, ImageDraw

from photosearch_devstack.mesh import Mesh

RESTORE_POINT = "restore_drill"


@dataclass(frozen=True)
class Check:
    step: str
    catalog_images: int
    fingerprints: int  # distinct images with a fingerprint, over every model
    missing: int  # catalog images without one
    extra: int  # fingerprints of images catalog does not have
    doubled: int  # images with more than one fingerprint of one model
    seconds: float  # the step's own time (restore + rebuild + indexing)

    @property
    def ok(self) -> bool:
        return self.missing == self.extra == self.doubled == 0


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and not any(n.startswith("FAIL") for n in self.notes)

    def markdown(self) -> str:
        lines = [
            "| step | catalog images | with a fingerprint | missing | extra | doubled | s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in self.checks:
            lines.append(
                f"| {c.step} | {c.catalog_images} | {c.fingerprints} | {c.missing} | "
                f"{c.extra} | {c.doubled} | {c.seconds:.1f} |"
            )
        return "\n".join(lines + [""] + [f"- {n}" for n in self.notes])


def photo(seed: int) -> bytes:
    """A distinct photo-like JPEG per seed (shapes on a tinted gradient)."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    image = Image.blend(image, Image.new("RGB", image.size, _colour(rng)), 0.6)
    draw = ImageDraw.Draw(image)
    for _ in range(10):
        x, y, r = rng.randrange(320), rng.randrange(240), rng.randrange(15, 80)
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(
            (x - r, y - r, x + r, y + r), fill=_colour(rng)
        )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


class Drill:
    def __init__(self, data_dir: Path, extra_env: dict[str, str], timeout: float) -> None:
        self.data_dir = data_dir
        self.archive = data_dir / "wal-archive"
        self.timeout = timeout
        options = (
            f"-c wal_level=replica -c archive_mode=on -c archive_command='cp %p {self.archive}/%f'"
        )
        self.mesh = Mesh(data_dir, extra_env=extra_env, postgres_options=options)
        self.report = Report()
        self.model_id = ""
        self._seed = 0

    # The stack

    def start(self) -> None:
        self.mesh.start_infrastructure()
        assert self.mesh.postgres
        self.mesh.postgres.owned_dir(self.archive)
        self.mesh.start_services(self.timeout)

    def stop(self) -> None:
        self.mesh.stop()

    # Through the API

    def _http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.mesh.gateway_url, timeout=30, headers=self.mesh.admin_auth
        )

    @property
    def _admin(self) -> dict[str, str]:
        return self.mesh.admin_auth

    def add_photos(self, count: int) -> list[str]:
        """`count` items with a photo each; their item ids."""
        ids = []
        with self._http() as http:
            for _ in range(count):
                self._seed += 1
                item = http.post("/api/v1/items", json={"name": f"Drill item {self._seed:04d}"})
                item.raise_for_status()
                files = {"photo": (f"{self._seed}.jpg", photo(self._seed), "image/jpeg")}
                added = http.post(f"/api/v1/items/{item.json()['id']}/images", files=files)
                added.raise_for_status()
                ids.append(item.json()["id"])
        return ids

    def delete_item(self, item_id: str) -> None:
        with self._http() as http:
            http.delete(f"/api/v1/admin/items/{item_id}", headers=self._admin).raise_for_status()

    def _index(self, http: httpx.Client) -> dict[str, Any] | None:
        """The index status of the embedder's model; None while search cannot say yet
        (it starts from an empty database and knows no model until a worker is online)."""
        params = {"model_id": self.model_id} if self.model_id else {}
        reply = http.get("/api/v1/admin/index", headers=self._admin, params=params)
        if reply.status_code != 200:
            return None
        result: dict[str, Any] = reply.json()
        return result

    def rebuild(self) -> None:
        """Ask for a rebuild as soon as an embedder worker is online."""
        with self._http() as http:
            status = _until(lambda: _gate_open(self._index(http)), self.timeout, "a worker")
            self.model_id = status["embedder"]["model_id"]
            body = {"model_id": self.model_id, "retry_failed": True}
            reply = http.post("/api/v1/admin/index/rebuild", headers=self._admin, json=body)
            if reply.status_code != 202:
                raise RuntimeError(f"the rebuild was refused: {reply.status_code} {reply.text}")

    def wait_indexed(self) -> None:
        with self._http() as http:

            def settled() -> dict[str, Any] | None:
                s = self._index(http)
                if s is None:
                    return None
                done = s["catalog_images"] > 0 and s["embedded"] >= s["catalog_images"]
                return s if done and s["pending"] == 0 else None

            _until(settled, self.timeout, "every image to be indexed")

    # In the databases

    def catalog_images(self) -> set[str]:
        assert self.mesh.postgres
        with psycopg.connect(self.mesh.postgres.url("catalog")) as conn:
            # Those waiting for review have no vector on purpose.
            rows = conn.execute("SELECT id FROM images WHERE NOT pending").fetchall()
            return {str(r[0]) for r in rows}

    def check(self, step: str, started: float) -> Check:
        assert self.mesh.postgres
        images = self.catalog_images()
        seen: set[str] = set()
        extra: set[str] = set()
        missing: set[str] = set()
        doubled = 0
        with psycopg.connect(self.mesh.postgres.url("search")) as conn:
            models = conn.execute("SELECT id FROM models ORDER BY id").fetchall()
            for (number,) in models:
                rows = conn.execute(
                    f"SELECT image_id::text, count(*) FROM vectors_{int(number)}"
                    " WHERE variant = 'global' GROUP BY image_id"
                ).fetchall()
                have = {str(r[0]) for r in rows}
                doubled += sum(1 for r in rows if r[1] > 1)
                extra |= have - images
                missing |= images - have
                seen |= have
        if not models:
            missing = set(images)
        check = Check(
            step, len(images), len(seen), len(missing), len(extra), doubled,
            time.monotonic() - started,
        )  # fmt: skip
        self.report.checks.append(check)
        return check

    # The drill

    def run(self, photos: int) -> Report:
        started = time.monotonic()
        self.add_photos(photos)
        self.wait_indexed()
        self.check("built through the API", started)
        self.dump_and_restore()
        self.point_in_time(photos)
        return self.report

    def dump_and_restore(self) -> None:
        pg = self.mesh.postgres
        assert pg
        backups = pg.owned_dir(self.data_dir / "backups")
        before = self.catalog_images()
        pg.dump("catalog", backups / "catalog.dump")
        started = time.monotonic()
        self.mesh.stop_services()
        for database in ("catalog", "search"):  # both lost
            pg.drop_database(database)
        pg.restore("catalog", backups / "catalog.dump")
        pg.create_database("search")
        self.mesh.start_services(self.timeout)
        restored = self.catalog_images()
        self._note(restored == before, f"catalog restored from pg_dump: {len(restored)} images")
        self.rebuild()
        self.wait_indexed()
        self.check("catalog from pg_dump, search rebuilt from empty", started)

    def point_in_time(self, photos: int) -> None:
        pg = self.mesh.postgres
        assert pg
        base = self.data_dir / "backups" / "base"
        shutil.rmtree(base, ignore_errors=True)
        pg.base_backup(base)
        kept = self.add_photos(max(1, photos // 2))
        self.wait_indexed()
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_create_restore_point(%s)", (RESTORE_POINT,))
        at_point = self.catalog_images()
        self.add_photos(max(1, photos // 2))  # after the point: lost by the recovery
        self.delete_item(kept[0])  # so is this deletion
        self.wait_indexed()
        self._archive_current_wal()
        started = time.monotonic()
        self.mesh.stop_services()
        pg.stop()
        pg.recover(base, self.archive, RESTORE_POINT)
        _until(lambda: _promoted(pg.url()), self.timeout, "the recovery to finish")
        recovered = self.catalog_images()
        self._note(
            recovered == at_point,
            f"catalog recovered to the restore point: {len(recovered)} images, the "
            f"{len(at_point)} it held then (later additions and a deletion undone)",
        )
        pg.drop_database("search")  # newer than catalog now: derived, so rebuilt
        pg.create_database("search")
        self.mesh.start_services(self.timeout)
        self.rebuild()
        self.wait_indexed()
        self.check("catalog recovered to a point in time, search rebuilt", started)

    def _archive_current_wal(self) -> None:
        """Close the current WAL segment and wait until the archive holds it."""
        assert self.mesh.postgres
        with psycopg.connect(self.mesh.postgres.url(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row
            segment = str(row[0])

            def archived() -> bool:
                got = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
                return bool(got and got[0] and str(got[0]) >= segment)

            _until(archived, self.timeout, "the WAL to be archived")

    def _note(self, ok: bool, text: str) -> None:
        self.report.notes.append(("ok: " if ok else "FAIL: ") + text)


def _gate_open(status: dict[str, Any] | None) -> dict[str, Any] | None:
    ok = status and status["rebuild"]["allowed"] and status["embedder"].get("model_id")
    return status if ok else None


def _promoted(url: str) -> bool:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return bool(row is not None and not row[0])
    except psycopg.OperationalError:
        return False


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.3)


def run_drill(
    data_dir: Path, photos: int, extra_env: dict[str, str] | None = None, timeout: float = 180
) -> Report:
    drill = Drill(data_dir, extra_env or {}, timeout)
    try:
        drill.start()
        return drill.run(photos)
    finally:
        drill.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="restore-drill-"))
    # The model `make run` exported (or exports now, once) serves the drill too.
    models = str(Path.cwd() / ".data" / "models")
    env = {"EMBED_MODEL_CACHE_DIR": models, "GATEWAY_MODEL_DIR": models}
    started = time.monotonic()
    try:
        report = run_drill(folder, args.photos, env)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    verdict = "PASSED" if report.ok else "FAILED"
    sys.stdout.write(f"{report.markdown()}\n\n{verdict} in {time.monotonic() - started:.0f} s\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
