"""photosearch_devstack.child: a service started by the mesh runs as __main__ and stops
when its supervisor is killed, without the preexec_fn that made gRPC abort children."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

SLEEPER = textwrap.dedent(
    """
    import sys, time
    print("running as", __name__, "with", sys.argv[1:], flush=True)
    time.sleep(120)
    """
)


def env_with(folder: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}


def test_the_service_stops_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    supervisor_code = textwrap.dedent(
        """
        import os, subprocess, sys, time
        child = subprocess.Popen(
            [sys.executable, "-m", "photosearch_devstack.child", str(os.getpid()), "sleeper",
             "--flag"],
            stdout=open(sys.argv[1], "w"),
        )
        print(child.pid, flush=True)
        time.sleep(120)
        """
    )
    out = tmp_path / "service.out"
    supervisor = subprocess.Popen(
        [sys.executable, "-c", supervisor_code, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=env_with(tmp_path),
    )
    assert supervisor.stdout is not None
    service = psutil.Process(int(supervisor.stdout.readline()))
    deadline = time.monotonic() + 30
    while "running as" not in (out.read_text() if out.exists() else ""):
        assert time.monotonic() < deadline, "the service never started"
        time.sleep(0.05)
    assert out.read_text().strip() == "running as __main__ with ['--flag']"
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait(10)
    service.wait(10)  # raises psutil.TimeoutExpired if the service outlived it


def test_a_service_whose_supervisor_is_already_gone_does_not_start(tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    done = subprocess.run(
        [sys.executable, "-m", "photosearch_devstack.child", "1", "sleeper"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env_with(tmp_path),
    )
    assert done.returncode == 1
    assert "the supervisor (pid 1) is gone" in done.stderr
    assert "running as" not in done.stdout
