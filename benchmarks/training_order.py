"""Diagnostic: how well the pretrain input pipeline mixes the corpus's order.

Feeds the training split as the pretrain stage does (padded batches) for each shuffle buffer
size and reports the mean molecule length of consecutive windows of sequences. Shuffled
i.i.d., the window means would spread by about sd / sqrt(window); a corpus written in an order
with structure (MOSES is) and a buffer much smaller than the split give a drifting training
distribution instead (the eval loss drifts with it). For the eval split it compares the first
``eval_batches`` x ``batch_size`` records in file order and the random sample the pretrain stage
scores (``pretrain.eval_dataset``) with the whole split.

    python -m benchmarks.training_order [--config configs/molecule.yaml] [--workdir DIR]
        [--buffers [100000 1500000 ...]] [--window 50000] [--windows 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import machine
from seqtutor.components import pretrain
from seqtutor import tfrecords
from seqtutor import config as config_lib
from seqtutor.pipeline import runner

import numpy as np


def window_means(data: Path, vocab: dict, buffer: int, window: int, windows: int):
    """Mean length of each of ``windows`` consecutive windows, and the per-sequence sd."""
    batch = 1000
    dataset = pretrain.make_dataset(data, "train", vocab, batch, 0, training=True,
                                    shuffle_buffer=buffer, bucket_by_length=False)
    lengths = np.concatenate([(weights.numpy() > 0).sum(axis=1) for _, _, weights in
                              dataset.take(window * windows // batch)])
    return lengths.reshape(windows, -1).mean(axis=1), float(lengths.std())


def eval_subsets(data: Path, vocab: dict, options, seed: int) -> dict:
    """How well the pretrain stage's eval sample and the head of the eval split in file order
    represent the whole split: mean length and the total variation distance of their token
    frequencies from the split's (a random subset of that size: sampling noise only)."""
    def token_counts(dataset):  # [sequences, vocabulary] target-token counts
        num_tokens = int(vocab["num_tokens"])
        return np.array([np.bincount(row[mask], minlength=num_tokens)
                         for _, targets, weights in dataset
                         for row, mask in zip(targets.numpy(), weights.numpy() > 0)])

    def describe(counts, whole):
        frequencies = counts.sum(axis=0) / counts.sum()
        distance = 0.5 * np.abs(frequencies - whole.sum(axis=0) / whole.sum()).sum()
        return {"mean_length": round(float(counts.sum(axis=1).mean()), 3),
                "token_tv_distance_from_split": round(float(distance), 4)}

    whole = token_counts(pretrain.make_dataset(data, "eval", vocab, 1000, 0, training=False))
    sample = token_counts(pretrain.eval_dataset(data, vocab, options, seed))
    return {"records": len(whole), "subset_records": len(sample),
            "whole_split": describe(whole, whole),
            "head_in_file_order": describe(whole[:len(sample)], whole),
            "stage_eval_sample": describe(sample, whole)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/molecule.yaml")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--buffers", type=int, nargs="*", default=[100_000, 1_500_000],
                        help="training shuffle buffers to compare (none: the eval split only)")
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
    if config.pretrain.eval_batches:
        result["eval"] = eval_subsets(data, vocab, config.pretrain, config.seed)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
