"""What a command prints: a line per stage, one progress bar per long stage, and no library noise.

Foundation layer: imports nothing else of the project (and neither TensorFlow nor Beam).

- :func:`session` configures one command: logging (``seqtutor`` INFO lines as plain messages,
  warnings and errors of every library; ``verbose`` restores debug logging of everything),
  Python warnings of the ML libraries, and, with ``filter_native_output``, a filter on file
  descriptor 2 that drops the lines no ``logging`` setting reaches: TensorFlow's C++ start-up
  and CUDA probing lines (written before absl's logging is initialised, whatever
  ``TF_CPP_MIN_LOG_LEVEL`` says) and the Beam SDK harness's own logging in its worker processes.
- :class:`Progress`: a live bar on a terminal; elsewhere (a log file, CI, a captured pipe) a plain
  line now and then (at most one per 10 % and per ``min_interval`` seconds).
- :func:`quiet` hides what a library prints on its own (``tensorflow_datasets`` metadata
  writing) in a quiet session; :func:`beam_worker_options` keeps Beam's workers at WARNING.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import os
import re
import shutil
import subprocess
from multiprocessing import resource_tracker
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO

# Third-party loggers: their INFO lines are Beam's bundles, TF's asset writes and the like.
_QUIET_LOGGERS = {"apache_beam": logging.WARNING, "absl": logging.ERROR,
                  "tensorflow": logging.ERROR, "tensorflow_datasets": logging.ERROR,
                  "h5py": logging.WARNING}
# Python warnings raised inside these libraries (HDF5 legacy format, StructuredValue encoding,
# tf.function retracing hints, ...) are theirs to fix, not the user's.
_QUIET_WARNING_MODULES = (r"(tensorflow|tf_keras|keras|tf_agents|tensorflow_probability|"
                          r"tensorflow_datasets|apache_beam|absl|gym|h5py)(\.|$)")
# Log records that are noise whatever their level: (logger name prefix, message pattern).
_NOISE_RECORDS = (
    ("root", re.compile(r"apitools not found")),  # Beam's GCP extras, unused here
)
# Beam relays a worker's records to the runner as "Worker: <LogEntry proto text>".
_WORKER_RECORD = re.compile(r'message: "(?P<message>(?:[^"\\]|\\.)*)".*?'
                            r'log_location: "(?P<location>(?:[^"\\]|\\.)*)"')

# Lines of file descriptor 2 (native code, child processes) dropped by the native filter; each
# pattern is matched at the start of a line.
NATIVE_NOISE = (
    # absl before absl::InitializeLog(): TF's cudart stub, cuda_platform, cpu_feature_guard.
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"[IW]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] ",
    # CUDA probing at ERROR: no driver (a CPU machine), plug-ins registered twice (GPU ones).
    r"E\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] (failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory)",
    r"To enable the following instructions: ",  # cpu_feature_guard's second line
    # The Beam SDK harness in each worker process: logging.basicConfig's format.
    r"(DEBUG|INFO):[\w.]+:",
    r"WARNING:(__main__|apache_beam[\w.]*):",
    r"WARNING:root:apitools not found",
    # gym (a tf-agents dependency) prints a notice on import.
    r"Gym has been unmaintained since 2022",
    r"Please upgrade to Gymnasium",
    r"See the migration guide at https://gymnasium",
)

# Runs in its own process (crashes of the command lose none of its last lines): copies stdin to
# stdout line by line, leaving out lines that match a pattern of argv; a partial line (a prompt,
# a progress bar) is written once nothing more came for a moment.
_FILTER_PROGRAM = r"""
import os, re, select, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the command reports, the filter stays
noise = re.compile(b"|".join(b"(?:" + p.encode() + b")" for p in sys.argv[1:]))
buffer = b""
def write(data):
    while data:
        try:
            data = data[os.write(1, data):]
        except InterruptedError:
            continue
        except OSError:
            return
while True:
    ready = select.select([0], [], [], 0.2)[0]
    if not ready:
        if buffer and not noise.match(buffer):
            write(buffer)
        buffer = b""
        continue
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, buffer = (buffer + chunk).split(b"\n")
    write(b"".join(line + b"\n" for line in lines if not noise.match(line)))
if buffer and not noise.match(buffer):
    write(buffer)
"""


@dataclasses.dataclass
class _Session:
    verbose: bool
    stream: TextIO | None = None  # the terminal's stderr when fd 2 goes through the filter
    saved_fd: int | None = None
    filter_process: subprocess.Popen | None = None


_session: _Session | None = None
_live: Progress | None = None  # the bar drawn on the terminal now, if any


def verbose() -> bool:
    """Whether the command asked for everything (``-v``); False outside a session."""
    return bool(_session and _session.verbose)


def stream() -> TextIO:
    """Where the console writes: the terminal's stderr (past the native filter), or
    ``sys.stderr`` as it is now."""
    if _session is not None and _session.stream is not None:
        return _session.stream
    return sys.stderr


def error(text: str) -> None:
    """Write a line to :func:`stream` (a command's error), below any live bar, which ends."""
    if _live is not None:
        _live.close()  # a stage that failed left its bar
    print(text, file=stream(), flush=True)


def _isatty(target: TextIO) -> bool:
    try:
        return target.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class ConsoleHandler(logging.Handler):
    """Log records as console lines: plain for INFO, ``WARNING: ...`` above; noise dropped.

    A live progress bar is cleared before the line and drawn again after it.
    """

    def __init__(self, verbose_: bool = False):
        super().__init__(logging.DEBUG if verbose_ else logging.INFO)
        self.verbose = verbose_
        if verbose_:
            self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                                datefmt="%H:%M:%S"))

    def filter(self, record: logging.LogRecord) -> bool:
        if not super().filter(record):
            return False
        if self.verbose:
            return True
        message = record.getMessage()
        if any(record.name.startswith(name) and pattern.search(message)
               for name, pattern in _NOISE_RECORDS):
            return False
        if record.name.startswith("apache_beam") and message.startswith("Worker: "):
            return self._worker_record(record, message)
        return True

    @staticmethod
    def _worker_record(record: logging.LogRecord, message: str) -> bool:
        """A Beam worker's record relayed by the runner: Beam's own are noise below ERROR;
        others are shown as ``worker: <message>``."""
        match = _WORKER_RECORD.search(message)
        if match is None:
            return record.levelno >= logging.ERROR
        if "apache_beam" in match["location"] and record.levelno < logging.ERROR:
            return False
        text = match["message"].encode().decode("unicode_escape", errors="replace")
        record.msg, record.args = "worker: %s", (text,)
        return True

    def format(self, record: logging.LogRecord) -> str:
        if self.verbose:
            return super().format(record)
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname}: {text}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        return text

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            target = stream()
            live = _live if _live is not None and _live.stream is target else None
            if live is not None:
                live.clear()
            target.write(line + "\n")
            target.flush()
            if live is not None:
                live.redraw()
        except Exception:  # noqa: BLE001 (logging's own contract)
            self.handleError(record)


def _start_native_filter(patterns: tuple[str, ...]) -> tuple[int, TextIO, subprocess.Popen]:
    """Send file descriptor 2 through the filter process; returns the saved terminal fd, a
    stream on it and the process."""
    sys.stderr.flush()
    saved = os.dup(2)
    read, write = os.pipe()
    try:
        process = subprocess.Popen([sys.executable, "-S", "-c", _FILTER_PROGRAM, *patterns],
                                   stdin=read, stdout=saved, close_fds=True)
    except OSError:
        os.close(read), os.close(write), os.close(saved)
        raise
    os.close(read)
    # multiprocessing's resource tracker (started by any spawned pool, e.g. the molecule
    # scorer's) lives until this process exits and would hold the pipe open past the command:
    # start it first, so that it keeps the terminal's fd instead.
    with contextlib.suppress(Exception):
        resource_tracker.ensure_running()
    os.dup2(write, 2)  # what C++ code and child processes write now passes the filter
    os.close(write)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    terminal = open(os.dup(saved), "w", buffering=1, encoding=encoding,  # noqa: SIM115
                    errors="backslashreplace")
    return saved, terminal, process


def _stop_native_filter(session: _Session) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    if session.saved_fd is not None:
        os.dup2(session.saved_fd, 2)  # the pipe's last write end here closes
        os.close(session.saved_fd)
    if session.filter_process is not None:
        try:
            session.filter_process.wait(timeout=5)  # its last lines reach the terminal first
        except subprocess.TimeoutExpired:
            pass  # a child process still holds the pipe: the filter ends with it
    if session.stream is not None:
        with contextlib.suppress(Exception):
            session.stream.close()


@contextlib.contextmanager
def session(verbose_: bool = False, *, filter_native_output: bool = False) -> Iterator[None]:
    """Configure the console for one command; everything is restored on exit.

    Args:
      verbose_: show everything: debug logging of every library, Beam's worker lines, TF's.
      filter_native_output: also filter file descriptor 2 (only for a process the command owns:
        ``seqtutor`` itself, not a caller of ``main`` in the same process).
    """
    global _session
    previous_session = _session
    root = logging.getLogger()
    touched = {"": root.level, "seqtutor": logging.getLogger("seqtutor").level}
    handler = ConsoleHandler(verbose_)
    current = _Session(verbose_)
    with warnings.catch_warnings():
        if verbose_:
            root.setLevel(logging.DEBUG)
        else:
            root.setLevel(logging.WARNING)
            logging.getLogger("seqtutor").setLevel(logging.INFO)
            for name, level in _QUIET_LOGGERS.items():
                touched[name] = logging.getLogger(name).level
                logging.getLogger(name).setLevel(level)
            warnings.filterwarnings("ignore", module=_QUIET_WARNING_MODULES)
            # pydub (a note-seq dependency) warns about ffmpeg, which nothing here uses; the
            # variable reaches Beam's worker processes too.
            warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")
            os.environ.setdefault("PYTHONWARNINGS", "ignore:Couldn't find ffmpeg")
            if filter_native_output:
                try:
                    current.saved_fd, current.stream, current.filter_process = \
                        _start_native_filter(NATIVE_NOISE)
                except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
                    pass  # no file descriptor 2 to filter: everything shows
        root.addHandler(handler)
        # Warnings that still show pass through the handler too (it clears a live bar first).
        logging.captureWarnings(True)
        _session = current
        try:
            yield
        finally:
            if _live is not None:
                _live.close()  # before its stream closes
            _session = previous_session
            logging.captureWarnings(False)
            root.removeHandler(handler)
            for name, level in touched.items():
                logging.getLogger(name or None).setLevel(level)
            _stop_native_filter(current)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Hide what a library prints to stdout/stderr (not logging) in a quiet session; it is
    shown after all if the block raises."""
    if _session is None or _session.verbose:
        yield
        return
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        stream().write(captured.getvalue())
        raise


def beam_worker_options(beam_args: list[str]) -> dict[str, Any]:
    """Pipeline options that keep Beam's SDK harness workers at the runner's Beam log level:
    WARNING unless Beam's INFO is shown here (``-v``) or ``beam_args`` set a level."""
    if any(arg.startswith("--default_sdk_harness_log_level") for arg in beam_args):
        return {}
    if logging.getLogger("apache_beam").isEnabledFor(logging.INFO):
        return {}
    return {"default_sdk_harness_log_level": "WARNING"}


# -- progress ------------------------------------------------------------------------------


def name_list(names: list[str], limit: int = 5) -> str:
    """``names`` joined by commas, the first ``limit`` of a longer list and how many more."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def format_seconds(seconds: float) -> str:
    """``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds < 100:
        return f"{seconds:.1f} s"
    seconds = int(round(seconds))
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _value(value: Any) -> str:
    if isinstance(value, int | bool):
        return f"{value:,}"
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


class Progress:
    """Progress of one long stage toward ``total`` (steps, env steps, models, ...).

    On a terminal: one bar, redrawn in place (at most ``redraw_interval`` apart). Elsewhere:
    plain lines, one when a new tenth of the work is done and ``min_interval`` seconds passed
    since the last line, or after ``max_interval`` seconds whatever the progress, and a last one
    when the work is done (or :meth:`close` ends it early).

    Args:
      label: the stage's name, at the start of every line.
      total: the amount of work.
      unit: what ``total`` counts (singular).
      start: the amount done already (a resumed run).
      target: the stream (default: :func:`stream`); ``interactive`` defaults to its isatty().
      clock: seconds (tests give their own).
    """

    def __init__(self, label: str, total: int, *, unit: str = "step", start: int = 0,
                 target: TextIO | None = None, interactive: bool | None = None,
                 min_interval: float = 10.0, max_interval: float = 120.0,
                 redraw_interval: float = 0.1, clock: Callable[[], float] = time.monotonic):
        self.label, self.total, self.unit = label, max(1, int(total)), unit
        self.stream = target if target is not None else stream()
        self.interactive = _isatty(self.stream) if interactive is None else interactive
        self.min_interval, self.max_interval = min_interval, max_interval
        self.redraw_interval = redraw_interval
        self._clock = clock
        self._started = clock()
        self._start = self.done = int(start)
        self.metrics: dict[str, Any] = {}
        self._written_at = self._started  # the last line or redraw
        self._written_done = self.done
        self._written_tenth = self._tenth(self.done)
        self._drawn = ""  # the bar on the terminal now
        self.closed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tenth(self, done: int) -> int:
        return math.floor(10 * min(done, self.total) / self.total)

    def due(self, done: int) -> bool:
        """Whether :meth:`update` with ``done`` would write (skip costly metrics otherwise)."""
        if self.closed:
            return False
        if done >= self.total:
            return self._written_done < self.total
        elapsed = self._clock() - self._written_at
        if self.interactive:
            return elapsed >= self.redraw_interval
        if done <= self._written_done:
            return False
        return ((self._tenth(done) > self._written_tenth and elapsed >= self.min_interval)
                or elapsed >= self.max_interval)

    def update(self, done: int, metrics: dict[str, Any] | None = None) -> None:
        """Record progress ``done`` (and the latest ``metrics``); write if due."""
        global _live
        if metrics:
            self.metrics.update(metrics)
        if not self.due(done):
            self.done = max(self.done, int(done))
            return
        self.done = int(done)
        self._write()
        if self.interactive and not self.closed:
            _live = self

    def close(self) -> None:
        """End the bar (a terminal keeps it as a line) or write the last plain line."""
        global _live
        if self.closed:
            return
        if self.interactive:
            if self.done != self._written_done or not self._drawn:
                self._write()
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
        elif self.done != self._written_done:
            self._write()
        self.closed = True
        self._drawn = ""
        if _live is self:
            _live = None

    # -- rendering -------------------------------------------------------------------------

    def _eta(self, now: float) -> str:
        rate_done = self.done - self._start
        if self.done >= self.total:
            return f"{_clock(now - self._started)} elapsed"
        if rate_done <= 0:
            return "estimating time left"
        left = (now - self._started) * (self.total - self.done) / rate_done
        return f"{_clock(left)} left"

    def _units(self) -> str:
        return f"{self.unit}s" if self.total != 1 else self.unit

    def _metrics_text(self) -> str:
        return "  ".join(f"{name} {_value(value)}" for name, value in self.metrics.items())

    def line(self, now: float | None = None) -> str:
        """The plain progress line."""
        now = self._clock() if now is None else now
        percent = 100 * min(self.done, self.total) / self.total
        text = (f"{self.label}: {self.done:,}/{self.total:,} {self._units()} ({percent:.0f}%), "
                f"{self._eta(now)}")
        metrics = self._metrics_text()
        return f"{text}, {metrics}" if metrics else text

    def bar(self, now: float | None = None, width: int | None = None) -> str:
        """The terminal bar, at most ``width`` characters."""
        now = self._clock() if now is None else now
        width = width or shutil.get_terminal_size((100, 20)).columns
        fraction = min(self.done, self.total) / self.total
        cells = 24
        filled = int(cells * fraction)
        bar = "#" * filled + "-" * (cells - filled)
        text = (f"{self.label} [{bar}] {100 * fraction:3.0f}% {self.done:,}/{self.total:,} "
                f"{self._units()}  {self._eta(now)}")
        metrics = self._metrics_text()
        if metrics:
            text += "  " + metrics
        return text[:max(10, width - 1)]

    def _write(self) -> None:
        now = self._clock()
        if self.interactive:
            self._drawn = self.bar(now)
            self.stream.write("\r\x1b[K" + self._drawn)
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()
        self._written_at, self._written_done = now, self.done
        self._written_tenth = self._tenth(self.done)

    def clear(self) -> None:
        """Take the bar off the terminal line (a log line is about to be written)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")

    def redraw(self) -> None:
        if self._drawn:
            self.stream.write(self._drawn)
            self.stream.flush()
