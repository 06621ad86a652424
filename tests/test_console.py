"""The console: progress lines off a terminal, a live bar on one, the log handler, the filter of
file descriptor 2 (no TensorFlow, no Beam: fast)."""

import io
import logging
import subprocess
import sys
import textwrap

from seqtutor import console


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_off_a_terminal_progress_writes_a_plain_line_now_and_then():
    out, clock = io.StringIO(), FakeClock()
    progress = console.Progress("pretrain", 1000, unit="step", target=out, clock=clock,
                                min_interval=10, max_interval=120)
    assert not progress.interactive  # a StringIO is no terminal
    for step in range(1, 1001):
        clock.now = step / 10  # 100 s in all
        progress.update(step, {"loss": 2.0 - step / 1000})
    progress.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # One line per new tenth at most, and none closer than 10 s apart: the 10 s marks, the end.
    assert len(lines) == 10
    assert lines[0] == "pretrain: 100/1,000 steps (10%), 1:30 left, loss 1.9"
    assert lines[-1] == "pretrain: 1,000/1,000 steps (100%), 1:40 elapsed, loss 1"
    assert progress.closed and not progress.due(1000)


def test_off_a_terminal_slow_progress_still_shows_every_max_interval():
    out, clock = io.StringIO(), FakeClock()
    progress = console.Progress("tune/q", 100, unit="env step", target=out, clock=clock,
                                min_interval=10, max_interval=60)
    for step in (1, 2, 3):  # no tenth crossed for a long time
        clock.now += 50
        progress.update(step)
    progress.close()  # stopped early: the last state is written once
    assert out.getvalue().splitlines() == [
        "tune/q: 2/100 env steps (2%), 1:21:40 left",
        "tune/q: 3/100 env steps (3%), 1:20:50 left"]
    progress.close()
    assert len(out.getvalue().splitlines()) == 2


def test_a_resumed_run_counts_its_rate_from_where_it_started():
    out, clock = io.StringIO(), FakeClock()
    progress = console.Progress("pretrain", 100, target=out, clock=clock, start=50)
    clock.now = 20
    progress.update(60)
    assert out.getvalue() == "pretrain: 60/100 steps (60%), 1:20 left\n"


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_kept(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the bar is cut to the terminal's width
    out, clock = io.StringIO(), FakeClock()
    progress = console.Progress("tune/g", 4096, unit="env step", target=out, clock=clock,
                                interactive=True)
    for step in range(512, 4097, 512):
        clock.now += 1
        progress.update(step, {"r_T": 1.5})
    progress.close()
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 8 and text.endswith("\n") and text.count("\n") == 1
    assert text.rstrip().endswith("100% 4,096/4,096 env steps  0:08 elapsed  r_T 1.5")


def test_a_log_line_clears_the_live_bar_and_draws_it_again(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    progress = console.Progress("pretrain", 10, target=out, interactive=True, redraw_interval=0)
    progress.update(5)
    handler = console.ConsoleHandler()
    handler.handle(logging.LogRecord("seqtutor.x", logging.WARNING, __file__, 1,
                                     "careful %s", ("now",), None))
    progress.close()
    bar = progress.bar()
    assert "\r\x1b[K" + "WARNING: careful now\n" in out.getvalue()
    assert out.getvalue().endswith(bar + "\n")


def _record(name, level, message, *args):
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_the_handler_drops_beam_noise_and_keeps_a_worker_s_own_warning():
    handler = console.ConsoleHandler()
    relay = "apache_beam.runners.portability.local_job_service"
    beam_own = ('severity: WARN timestamp {   seconds: 1 } message: "Discarding unparseable '
                'args" log_location: "/venv/site-packages/apache_beam/options/x.py:12" '
                'thread: "1"')
    ours = ('severity: WARN timestamp {   seconds: 1 } message: "odd file \\\'a.mid\\\'" '
            'log_location: "/src/data_prep/sequence_job.py:40" thread: "1"')
    assert not handler.filter(_record(relay, logging.WARNING, "Worker: %s", beam_own))
    record = _record(relay, logging.WARNING, "Worker: %s", ours)
    assert handler.filter(record) and handler.format(record) == "WARNING: worker: odd file 'a.mid'"
    assert not handler.filter(_record("root", logging.WARNING, "apitools not found, and ..."))
    assert handler.format(_record("seqtutor.pipeline.runner", logging.INFO, "pretrain: %s",
                                  "running")) == "pretrain: running"
    assert console.ConsoleHandler(verbose_=True).filter(
        _record(relay, logging.WARNING, "Worker: %s", beam_own))


def test_a_session_sets_levels_and_restores_them():
    root, beam = logging.getLogger(), logging.getLogger("apache_beam")
    before = (root.level, beam.level, list(root.handlers))
    with console.session(verbose_=False):
        assert logging.getLogger("seqtutor.pipeline.runner").isEnabledFor(logging.INFO)
        assert not beam.isEnabledFor(logging.INFO)
        assert not logging.getLogger("tensorflow").isEnabledFor(logging.WARNING)
        assert console.beam_worker_options([]) == {"default_sdk_harness_log_level": "WARNING"}
        assert console.beam_worker_options(["--default_sdk_harness_log_level=DEBUG"]) == {}
        assert not console.verbose()
    with console.session(verbose_=True):
        assert console.verbose() and console.beam_worker_options([]) == {}
    assert (root.level, beam.level, list(root.handlers)) == before


def test_quiet_hides_what_a_library_prints_unless_it_fails(capsys):
    with console.session():
        with console.quiet():
            print("Auto-detected splits:")
        try:
            with console.quiet():
                print("what went before the failure")
                raise KeyError("x")
        except KeyError:
            pass
    captured = capsys.readouterr()
    assert "Auto-detected" not in captured.out + captured.err
    assert "what went before the failure" in captured.err


def test_the_native_filter_drops_tf_and_beam_worker_lines_of_fd_2_and_children():
    code = textwrap.dedent(r"""
        import os, subprocess, sys
        from seqtutor import console
        with console.session(filter_native_output=True):
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
            os.write(2, b"I0000 00:00:1796300211.191166    5264 cudart_stub.cc:31] Could not find cuda drivers\n")
            os.write(2, b"E0000 00:00:1796300228.711786    5762 cuda_platform.cc:52] failed call to cuInit: (303)\n")
            os.write(2, b"E0000 00:00:1796300228.711786    5762 op_kernel.cc:1] a real error\n")
            subprocess.run(["sh", "-c", "echo 'INFO:apache_beam.runners.worker.sdk_worker:Control channel established.' >&2; echo 'child error' >&2"])
            print("python warning line", file=sys.stderr)
            console.stream().write("console line\n")
            os.write(2, b"a partial ")  # reaches the terminal before the session ends
        print("line after the session", file=sys.stderr)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    # (The console's own lines skip the filter: they may come first.)
    assert sorted(lines[:-1]) == sorted([
        "E0000 00:00:1796300228.711786    5762 op_kernel.cc:1] a real error", "child error",
        "python warning line", "console line"])
    assert lines[-1] == "a partial line after the session"


def test_a_long_list_of_names_shows_five_and_counts_the_rest():
    names = [f"psi@c={c},seed=0" for c in (1, 2, 4, 8, 16, 32, 64)]
    assert console.name_list(names[:5]) == ", ".join(names[:5])
    assert console.name_list(names) == ", ".join(names[:5]) + " and 2 more"
    from seqtutor.pipeline import runner  # the evaluate stage's "done" line uses it
    assert runner.summary_text("evaluate", {"models": ["data", "mle"], "missing_models": names}
                               ).endswith("missing " + ", ".join(names[:5]) + " and 2 more")
