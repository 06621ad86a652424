"""Benchmark: MLE training throughput, and the default melody pretraining run.

1. Training throughput (tokens per second) of the configured model on random tokens, Keras fit,
   batch and window from the config (melody: LSTM(100), batch 128, 63 predicted tokens).
2. With --run: the pretrain stage of the config on WORKDIR/prepare_data (run prepare-data
   first), timed, with its eval metrics. Target (issue 3): under 10 minutes on 2 cores.

    python -m benchmarks.pretrain_melody [--run] [--workdir runs/melody]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import machine
from seqtutor import layout
from seqtutor import config as config_lib
from seqtutor.pipeline import runner
from seqtutor.components import pretrain
from seqtutor import sequence_model

import numpy as np
import tensorflow as tf


def supervised_tokens_per_second(options, batch: int, length: int, seconds: float) -> float:
    """Tokens per second of Keras-fit MLE steps on [batch, length] targets."""
    model = sequence_model.build_model(38, options.lstm_units, options.embedding_dim,
                                       options.dropout, options.l2)
    model.compile(optimizer=pretrain._optimizer(options),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tokens = np.random.default_rng(0).integers(0, 38, (batch * 64, length + 1))
    dataset = tf.data.Dataset.from_tensor_slices((tokens[:, :-1], tokens[:, 1:]))
    dataset = dataset.batch(batch).repeat().prefetch(tf.data.AUTOTUNE)
    model.fit(dataset, steps_per_epoch=20, epochs=1, verbose=0)  # warm-up and tracing
    steps = 50
    while True:
        started = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds or steps >= 100_000:
            return steps * batch * length / elapsed
        steps *= 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/melody.yaml")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--run", action="store_true", help="also run the pretrain stage")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = config_lib.load_config(args.config, args.overrides)
    length = config.prepare_data.sequence_length - 1
    result = {
        "benchmark": "pretrain_melody",
        "machine": machine(),
        "network": f"LSTM{config.pretrain.lstm_units}",
        "batch": f"{config.pretrain.batch_size} x {length} tokens",
        "train_tokens_per_second": round(supervised_tokens_per_second(
            config.pretrain, config.pretrain.batch_size, length, seconds=15.0)),
    }
    if args.run:
        workdir = args.workdir or runner.default_workdir(config)
        stage = runner.run_stage(config, "pretrain", workdir, force=True)
        metrics = json.loads((stage.path / layout.METRICS_FILE).read_text())
        result.update({
            "pretrain_wall_seconds": round(stage.seconds, 1),
            "steps": metrics["steps"], "stopped_early": metrics["stopped_early"],
            "eval_accuracy": round(metrics["eval_accuracy"], 4),
            "eval_log_perplexity": round(metrics["eval_log_perplexity"], 4),
        })
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
