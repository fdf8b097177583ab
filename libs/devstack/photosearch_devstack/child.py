"""Run a service module as this process's __main__, stopped with its supervisor:

    python -m photosearch_devstack.child SUPERVISOR_PID MODULE

The guard (PR_SET_PDEATHSIG) is set here, after the spawn, rather than in a preexec_fn:
a preexec_fn makes subprocess fork() instead of vfork(), which runs gRPC's fork handlers
in the supervisor's child, whose restarted poller thread then aborts the child once
close_fds has closed its epoll descriptor ("epoll_wait error: Bad file descriptor")."""

import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    supervisor, module = int(sys.argv[1]), sys.argv[2]
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # gone before the guard was set: nobody would stop us
        sys.exit(f"{module}: the supervisor (pid {supervisor}) is gone")
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
