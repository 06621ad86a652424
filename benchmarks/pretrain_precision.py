"""Benchmark: MLE training steps per second in float32 against a mixed-precision policy.

``pretrain.mixed_precision: mixed_bfloat16`` computes in bfloat16 (weights stay float32), which
CPUs with AVX512-BF16 or AMX run faster than float32; without those instructions it can be
slower. One model per policy and network size, trained on the same length-bucketed batches of
the config's prepare_data output, in alternating rounds in one process (a first pass over the
batches traces every length), so the ratio holds even when other work shares the cores.

    python -m benchmarks.pretrain_precision [--config configs/molecule.yaml] [--workdir DIR]
        [--units 256,256 --units 512,512] [--policy mixed_bfloat16] [--steps 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import machine
from seqtutor.components import pretrain
from seqtutor import sequence_model
from seqtutor import tfrecords
from seqtutor import config as config_lib
from seqtutor.pipeline import runner

import numpy as np
import tensorflow as tf


def _model(vocab_size: int, units: list[int], options, policy: str) -> tf.keras.Model:
    with sequence_model.global_dtype_policy(policy):
        model = sequence_model.build_model(vocab_size, units, options.embedding_dim)
        model.compile(optimizer=pretrain._optimizer(options),
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/molecule.yaml")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--units", action="append", default=None,
                        help="LSTM sizes, comma-separated; repeat for several networks "
                        "(default: the config's and 512,512)")
    parser.add_argument("--policy", default="mixed_bfloat16",
                        choices=["mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    config = config_lib.load_config(args.config)
    options = config.pretrain
    networks = ([[int(n) for n in units.split(",")] for units in args.units] if args.units
                else [options.lstm_units, [512, 512]])
    data = (args.workdir or runner.default_workdir(config)) / "prepare_data"
    vocab = tfrecords.read_vocab(data)
    # The same batches for every model, fetched once (a new fit would refill the shuffle buffer).
    batches = list(pretrain.make_dataset(
        data, "train", vocab, options.batch_size, options.skip_first_losses, training=True,
        shuffle_buffer=min(options.shuffle_buffer, 20000), bucket_by_length=True
    ).take(args.steps))

    def seconds_per_step(model: tf.keras.Model) -> float:
        started = time.perf_counter()
        for inputs, targets, weights in batches:
            model.train_on_batch(inputs, targets, sample_weight=weights)
        return (time.perf_counter() - started) / len(batches)

    results = []
    for units in networks:
        models = {policy: _model(int(vocab["num_tokens"]), units, options, policy)
                  for policy in ("float32", args.policy)}
        seconds = {policy: [] for policy in models}
        for _ in range(args.rounds):
            for policy, model in models.items():
                seconds_per_step(model)  # warm-up: traces every batch length
                seconds[policy].append(seconds_per_step(model))
        median = {policy: float(np.median(s)) for policy, s in seconds.items()}
        results.append({
            "lstm_units": units,
            "seconds_per_step": {policy: round(s, 3) for policy, s in median.items()},
            "rounds": {policy: [round(s, 3) for s in v] for policy, v in seconds.items()},
            "speedup": round(median["float32"] / median[args.policy], 2),
        })
    print(json.dumps({
        "benchmark": "pretrain_precision",
        "machine": machine(),
        "policy": args.policy,
        "batch": options.batch_size,
        "embedding": options.embedding_dim,
        "networks": results,
    }, indent=1))


if __name__ == "__main__":
    main()
