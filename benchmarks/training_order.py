"""Diagnostic: how well the pretrain input pipeline mixes the corpus's order.

Feeds the training split as the pretrain stage does (padded batches) for each shuffle buffer
size and reports the mean molecule length of consecutive windows of sequences. Shuffled
i.i.d., the window means would spread by about sd / sqrt(window); a corpus written in an order
with structure (MOSES is) and a buffer much smaller than the split give a drifting training
distribution instead (the eval loss drifts with it).

    python -m benchmarks.training_order [--config configs/molecule.yaml] [--workdir DIR]
        [--buffers 100000 1500000] [--window 50000] [--windows 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import machine
from components import pretrain
from data_prep import tfrecords
from pipeline import config as config_lib, runner

import numpy as np


def window_means(data: Path, vocab: dict, buffer: int, window: int, windows: int):
    """Mean length of each of ``windows`` consecutive windows, and the per-sequence sd."""
    batch = 1000
    dataset = pretrain.make_dataset(data, "train", vocab, batch, 0, training=True,
                                    shuffle_buffer=buffer, bucket_by_length=False)
    lengths = np.concatenate([(weights.numpy() > 0).sum(axis=1) for _, _, weights in
                              dataset.take(window * windows // batch)])
    return lengths.reshape(windows, -1).mean(axis=1), float(lengths.std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/molecule.yaml")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--buffers", type=int, nargs="+", default=[100_000, 1_500_000])
    parser.add_argument("--window", type=int, default=50_000)
    parser.add_argument("--windows", type=int, default=20)
    args = parser.parse_args()
    config = config_lib.load_config(args.config)
    data = (args.workdir or runner.default_workdir(config)) / "prepare_data"
    vocab = tfrecords.read_vocab(data)
    result = {"benchmark": "training_order", "machine": machine(), "window": args.window}
    for buffer in args.buffers:
        started = time.perf_counter()
        means, sd = window_means(data, vocab, buffer, args.window, args.windows)
        result[f"shuffle_buffer {buffer}"] = {
            "window_mean_lengths": [round(float(m), 2) for m in means],
            "spread_of_window_means": round(float(means.std()), 3),
            "iid_expectation": round(sd / np.sqrt(args.window), 3),
            "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
