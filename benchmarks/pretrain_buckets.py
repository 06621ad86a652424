"""Benchmark: MLE training steps per second with length-bucketed vs padded batches.

Variable-length data (the molecule corpus: 13-54 tokens) padded per random batch is partly
padding, and the LSTM pays for every padded step; ``pretrain.bucket_by_length`` batches
sequences of about the same length. Both input pipelines feed one model in the same process,
in alternating rounds (the first steps of each are warm-up and tracing), on the prepare_data
output of the config.

    python -m benchmarks.pretrain_buckets [--config configs/molecule.yaml] [--workdir DIR]
        [--steps 200] [--rounds 2]
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


def padding_fraction(dataset: tf.data.Dataset, batches: int = 200) -> float:
    real = total = 0
    for _, _, weights in dataset.take(batches):
        real += int(tf.math.count_nonzero(weights))
        total += int(tf.size(weights))
    return 1 - real / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/molecule.yaml")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    config = config_lib.load_config(args.config)
    options = config.pretrain
    data = (args.workdir or runner.default_workdir(config)) / "prepare_data"
    vocab = tfrecords.read_vocab(data)
    model = sequence_model.build_model(int(vocab["num_tokens"]), options.lstm_units,
                                       options.embedding_dim, options.dropout, options.l2)
    model.compile(optimizer=pretrain._optimizer(options),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    datasets = {bucketed: pretrain.make_dataset(
        data, "train", vocab, options.batch_size, options.skip_first_losses, training=True,
        shuffle_buffer=min(options.shuffle_buffer, 20000), bucket_by_length=bucketed)
        for bucketed in (False, True)}
    seconds = {False: [], True: []}
    for _ in range(args.rounds):
        for bucketed, dataset in datasets.items():
            model.fit(dataset, steps_per_epoch=40, epochs=1, verbose=0)  # warm-up
            started = time.perf_counter()
            model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0)
            seconds[bucketed].append((time.perf_counter() - started) / args.steps)
    padded, bucketed = (float(np.median(seconds[b])) for b in (False, True))
    print(json.dumps({
        "benchmark": "pretrain_buckets",
        "machine": machine(),
        "network": f"LSTM{options.lstm_units}, embedding {options.embedding_dim}",
        "batch": options.batch_size,
        "padding_fraction": {"padded": round(padding_fraction(datasets[False]), 3),
                             "bucketed": round(padding_fraction(datasets[True]), 3)},
        "seconds_per_step": {"padded": round(padded, 3), "bucketed": round(bucketed, 3),
                             "rounds": {str(k): [round(s, 3) for s in v]
                                        for k, v in seconds.items()}},
        "speedup": round(padded / bucketed, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
