"""A pytest plugin: when a pytest-xdist worker dies, the crash report says how it ended.

xdist reports only "worker 'gw1' crashed while running <test>". The worker's exit status tells
the causes apart: SIGKILL is most often the kernel's out-of-memory killer (the peak memory
says whether it was near the machine's), SIGSEGV or SIGABRT a native crash, whose Python
traceback faulthandler wrote to the worker's stderr when it happened.
"""

from __future__ import annotations

import os
import signal
import time

import pytest


def exit_description(pid: int, returncode: int | None, timeout: float = 10.0) -> str:
    """How the child process ``pid`` ended: its signal or exit code, and its peak memory
    when it can still be reaped here (os.wait4 gives its resource usage)."""
    reaped, status, rusage = 0, 0, None
    deadline = time.monotonic() + timeout
    try:
        while not reaped and time.monotonic() < deadline:
            reaped, status, rusage = os.wait4(pid, os.WNOHANG)
            if not reaped:
                time.sleep(0.1)
    except ChildProcessError:  # already reaped, by subprocess.Popen
        pass
    if reaped:
        returncode = os.waitstatus_to_exitcode(status)  # -N for signal N
    else:
        rusage = None
    if returncode is None:
        return f"the worker (pid {pid}) had not exited {timeout:.0f} s after it went down"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        ended = f"the worker (pid {pid}) was ended by {name}"
    else:
        ended = f"the worker (pid {pid}) exited with code {returncode}"
    if rusage is not None:  # ru_maxrss is in KiB on Linux
        ended += f", peak memory {rusage.ru_maxrss / 2 ** 20:.2f} GiB"
    return ended


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    """Adds the worker's exit status to xdist's crash report of ``crashitem``."""
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    popen = getattr(getattr(gateway, "_io", None), "popen", None)
    if popen is not None:
        report.longrepr = f"{report.longrepr}: {exit_description(popen.pid, popen.returncode)}"
