"""tests/worker_exit.py: a crashed xdist worker's report says how the worker ended."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_a_crashed_worker_report_names_its_signal_and_exit_code(tmp_path):
    (tmp_path / "test_dies.py").write_text(
        "import os, signal\n"
        "def test_killed():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        "def test_exits():\n    os._exit(3)\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "1", "-p", "tests.worker_exit",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "crashed while running 'test_dies.py::test_killed': the worker (pid" in output
    assert "was ended by SIGKILL, peak memory" in output
    assert "crashed while running 'test_dies.py::test_exits': the worker (pid" in output
    assert "exited with code 3" in output
