"""Benchmark: the tune loop in float32 against a mixed-precision policy (tune.mixed_precision).

Two tuners of the config's algorithm start from the same model (the workdir's pretrained prior
when there is one, else a fresh model of the config's size) and run the stage's own loop,
collect then train to the replay ratio, in alternating rounds in one process, so the ratio holds
even when other work shares the cores. Collection includes the task reward (RDKit for
molecules), which no policy changes. Prints seconds per environment step, the collect and train
parts, and the speed-up.

    python -m benchmarks.tune_precision [--config configs/molecule.yaml] [--workdir DIR]
        [--policy mixed_bfloat16] [--algorithm psi] [--collections 2] [--rounds 3]
        [--set tune.batch_episodes=512 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import machine
from seqtutor import layout
from seqtutor import domains
from seqtutor import sequence_model
from seqtutor.components import tune
from seqtutor import tfrecords
from seqtutor import config as config_lib
from seqtutor.pipeline import runner

import numpy as np


def _loop_seconds(tuner: tune.Tuner, collections: int) -> tuple[float, float, int]:
    """(collect seconds, train seconds, environment steps) of ``collections`` iterations."""
    collect = train = 0.0
    before = int(tuner.env_steps.numpy())
    for _ in range(collections):
        t0 = time.perf_counter()
        tuner.collect()
        t1 = time.perf_counter()
        tuner.train()
        train += time.perf_counter() - t1
        collect += t1 - t0
    return collect, train, int(tuner.env_steps.numpy()) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/molecule.yaml")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--policy", default="mixed_bfloat16",
                        choices=["mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--algorithm", default="psi")
    parser.add_argument("--collections", type=int, default=2, help="per tuner and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = config_lib.load_config(args.config, args.overrides)
    workdir = args.workdir or runner.default_workdir(config)
    vocab = tfrecords.read_vocab(workdir / "prepare_data")
    if (workdir / "pretrain" / layout.MODEL_FILE).is_file():
        model, source = sequence_model.load_model(workdir / "pretrain", vocab), "pretrained"
    else:
        model = sequence_model.build_model(int(vocab["num_tokens"]), config.pretrain.lstm_units,
                                           config.pretrain.embedding_dim)
        source = "fresh (no pretrain artifact)"
    domain = domains.get_domain(config.domain, config.reward, vocab)
    options = config.tune.model_copy(update={"num_steps": 10 ** 9})
    tuners = {policy: tune.Tuner(model, domain, options.model_copy(
                  update={"mixed_precision": policy}), args.algorithm, seed=0)
              for policy in (False, args.policy)}
    with domain:
        for tuner in tuners.values():  # warm-up: trace collect and train, fill one batch
            while int(tuner.replay.size.numpy()) < options.batch_episodes:
                tuner.collect()
            tuner.train()
        times = {policy: [] for policy in tuners}
        for _ in range(args.rounds):
            for policy, tuner in tuners.items():
                times[policy].append(_loop_seconds(tuner, args.collections))
    per_policy = {}
    for policy, rows in times.items():
        collect, train, steps = (float(np.sum(column)) for column in zip(*rows))
        per_policy[policy or "float32"] = {
            "ms_per_env_step": round(1000 * (collect + train) / steps, 4),
            "collect_ms_per_env_step": round(1000 * collect / steps, 4),
            "train_ms_per_env_step": round(1000 * train / steps, 4),
            "rounds_ms_per_env_step": [round(1000 * (c + t) / s, 4) for c, t, s in rows]}
    full, mixed = per_policy["float32"], per_policy[args.policy]
    print(json.dumps({
        "benchmark": "tune_precision", "machine": machine(), "config": args.config,
        "algorithm": args.algorithm, "model": source,
        "lstm_units": [layer.units for layer in sequence_model.StepModel(model).lstms],
        "batch_episodes": options.batch_episodes, "replay_ratio": options.replay_ratio,
        "results": per_policy,
        "speedup": round(full["ms_per_env_step"] / mixed["ms_per_env_step"], 3),
        "train_speedup": round(full["train_ms_per_env_step"] / mixed["train_ms_per_env_step"],
                               3),
        "collect_speedup": round(
            full["collect_ms_per_env_step"] / mixed["collect_ms_per_env_step"], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
