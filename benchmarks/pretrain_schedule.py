"""Benchmark: pretraining schedules compared by the quality they reach and the time they take.

Each schedule (a set of config overrides) runs the pretrain stage (``pretrain.run``, as
``seqtutor run``) on WORKDIR/prepare_data (made first when missing) once per seed, the schedules
taking turns within each seed so that the machine's speed on the day weighs on all alike. Each
run's model goes to a temporary folder; nothing in WORKDIR/pretrain changes.

    python -m benchmarks.pretrain_schedule [--config configs/melody.yaml] [--workdir runs/melody]
        [--seeds 0 1] [--schedule NAME:key=value,key=value ...]

Without --schedule the schedules are ``config`` (the config as it is) and, for melodies,
``a_third`` (the default's learning-rate curve in a third of its 12,000 steps: x0.85 every 250
steps, 4,000 steps; docs/figures.md compares the two). Prints (and with
--output writes) a JSON object: per schedule the overrides, each run's wall seconds, steps,
whether it stopped early, eval log perplexity and eval loss curve, their means, and
``wall_ratio`` (its mean wall time over the first schedule's). Smoke (tests): ``--smoke`` (the
melody smoke corpus, an LSTM(16), two 20-step schedules, one seed).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common

# The default melody schedule compressed into a third of its steps.
MELODY_A_THIRD = ["pretrain.max_steps=4000", "pretrain.lr_decay_steps=250"]
SMOKE = {"config": common.SMOKE_CONFIGS["melody"], "seeds": [0],
         "schedule": ["short:pretrain.max_steps=10", "long:pretrain.max_steps=20"]}


def parse_schedule(text: str) -> tuple[str, list[str]]:
    """``NAME:key=value,key=value`` to (NAME, ["key=value", ...]); ``NAME:`` is the config."""
    name, sep, overrides = text.partition(":")
    if not sep or not name:
        raise ValueError(f"--schedule {text!r}: expected NAME:key=value,key=value")
    # A comma starts a new override only before "key=": list values keep theirs.
    return name, [item for item in re.split(r",(?=\s*[\w.]+=)", overrides) if item.strip()]


def train(config, data: Path) -> dict:
    """One pretrain run of ``config`` into a temporary folder: its time and metrics."""
    from seqtutor import layout
    from seqtutor.components import pretrain

    with tempfile.TemporaryDirectory(prefix="pretrain-schedule-") as output:
        started = time.perf_counter()
        pretrain.run(config, {"prepare_data": data}, Path(output))
        seconds = time.perf_counter() - started
        metrics = json.loads((Path(output) / layout.METRICS_FILE).read_text())
    return {
        "seed": config.seed,
        "wall_seconds": round(seconds, 1),
        "steps": metrics["steps"],
        "stopped_early": metrics["stopped_early"],
        "eval_log_perplexity": round(metrics["eval_log_perplexity"], 4),
        "eval_accuracy": round(metrics["eval_accuracy"], 4),
        "curve": [[point["step"], round(point["val_loss"], 4)]
                  for point in metrics["history"] if "val_loss" in point],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/melody.yaml")
    parser.add_argument("--schedule", action="append", default=None,
                        metavar="NAME:key=value,...", help="a schedule to run (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = common.parse_args(parser, argv, SMOKE)
    try:
        parsed = [parse_schedule(text) for text in args.schedule or []]
    except ValueError as error:
        parser.error(str(error))
    schedules = dict(parsed)
    if len(schedules) < len(parsed):
        parser.error("--schedule: each schedule needs its own NAME")
    from seqtutor import config as config_lib

    smoke_overrides = [*common.SMOKE_NETWORK, ("pretrain.eval_every", 10)]
    with common.setup(args, smoke_overrides=smoke_overrides) as (config, workdir):
        if not schedules:
            schedules = {"config": []}
            if config.domain == "melody":
                schedules["a_third"] = MELODY_A_THIRD
        data = common.artifact(config, "prepare_data", workdir)
        base = config.model_dump(mode="json")
        configs = {name: config_lib.config_from_dict(base, overrides)  # errors before a run
                   for name, overrides in schedules.items()}
        runs = {name: [] for name in schedules}
        for seed in args.seeds:
            for name, schedule_config in configs.items():
                seeded = schedule_config.model_copy(update={"seed": seed})
                runs[name].append(train(seeded, data))
                print(f"pretrain_schedule: {name} seed {seed}: {runs[name][-1]['wall_seconds']} s,"
                      f" eval log perplexity {runs[name][-1]['eval_log_perplexity']}", flush=True)
    first = np.mean([run["wall_seconds"] for run in runs[next(iter(runs))]])
    result = {"seeds": args.seeds, "schedules": {}}
    for name, schedule_runs in runs.items():
        wall = float(np.mean([run["wall_seconds"] for run in schedule_runs]))
        perplexity = [run["eval_log_perplexity"] for run in schedule_runs]
        result["schedules"][name] = {
            "overrides": schedules[name],
            "mean_wall_seconds": round(wall, 1),
            "wall_ratio": round(wall / first, 3),
            "mean_eval_log_perplexity": round(float(np.mean(perplexity)), 4),
            "sd_eval_log_perplexity": round(float(np.std(perplexity, ddof=1)), 4)
                                      if len(perplexity) > 1 else None,
            "runs": schedule_runs,
        }
    return common.report("pretrain_schedule", result, args)


if __name__ == "__main__":
    main()
