"""Benchmark: sampling plus rule statistics of 100,000 melodies per model, against the reference
design of one melody at a time (a Python loop over steps, one graph call per step, then the
step-at-a-time rules), timed on 1,000 melodies in the same run. Target (issue 5): under 10 s per
model on 2 cores.

    python -m benchmarks.evaluate_melody [--num 100000] [--reference-num 1000]
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks import machine
from seqtutor import config as config_lib
from seqtutor import sequence_model
from seqtutor.domains.melody import rules_reference, statistics

import numpy as np
import tensorflow as tf


def reference_design(model, first_tokens, length: int) -> float:
    """Seconds to sample and score melodies one at a time, one graph call per step."""
    step_model = sequence_model.StepModel(model)
    step = tf.function(step_model.step)
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    for first in first_tokens:
        state = step_model.zero_state(1)
        token = tf.constant([first], tf.int32)
        melody = []
        for _ in range(length):
            logits, state = step(token, state)
            probabilities = tf.nn.softmax(logits[0]).numpy().astype(np.float64)
            choice = int(rng.choice(len(probabilities), p=probabilities / probabilities.sum()))
            melody.append(choice)
            token = tf.constant([choice], tf.int32)
        rules_reference.composition_terms(melody)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/melody.yaml")
    parser.add_argument("--num", type=int, default=100_000)
    parser.add_argument("--reference-num", type=int, default=1000)
    args = parser.parse_args()
    config = config_lib.load_config(args.config)
    length = config.tune.episode_length
    model = sequence_model.build_model(38, config.pretrain.lstm_units)
    sampler = sequence_model.PolicySampler(model)  # what evaluate uses for the MLE model
    first = np.random.default_rng(0).integers(0, 38, args.num, dtype=np.int32)
    batch = config.evaluate.batch_size
    sampler.sample(first[:batch], length, batch_size=batch)  # trace the graph

    started = time.perf_counter()
    tokens, log_prior = sampler.sample(first, length, batch_size=batch)
    sampled = time.perf_counter() - started
    statistics.rule_statistics(tokens, log_prior)
    total = time.perf_counter() - started

    reference = reference_design(model, first[:args.reference_num], length)
    per_melody_batched = total / args.num
    per_melody_reference = reference / args.reference_num
    print(json.dumps({
        "benchmark": "evaluate_melody",
        "machine": machine(),
        "network": f"LSTM{config.pretrain.lstm_units}", "melodies": args.num,
        "sampling_seconds": round(sampled, 2), "sampling_and_statistics_seconds": round(total, 2),
        "reference_melodies": args.reference_num,
        "reference_seconds": round(reference, 2),
        "speedup_per_melody": round(per_melody_reference / per_melody_batched, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
