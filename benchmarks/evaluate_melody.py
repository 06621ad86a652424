"""Benchmark: sampling plus rule statistics of 100,000 melodies per model, against the reference
design of one melody at a time (a Python loop over steps, one graph call per step, then the
step-at-a-time rules), timed on 1,000 melodies in the same run, on a fresh model of the
config's size with the evaluate stage's sampler. Target (docs/figures.md): under 10 s per model on 2
cores.

    python -m benchmarks.evaluate_melody [--num 100000] [--reference-num 1000]

Prints (and with --output writes) a JSON object: network, melodies, sampling_seconds,
sampling_and_statistics_seconds, reference_melodies, reference_seconds, speedup_per_melody.
Smoke (tests): ``--smoke`` (the smoke config's LSTM(32), 500 melodies, 3 by the reference).
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from benchmarks import common
from seqtutor import sequence_model
from seqtutor.domains.melody import rules_reference, statistics

SMOKE = {"config": common.SMOKE_CONFIGS["melody"], "num": 500, "reference_num": 3}


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


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/melody.yaml")
    parser.add_argument("--num", type=int, default=100_000)
    parser.add_argument("--reference-num", type=int, default=1000)
    args = common.parse_args(parser, argv, SMOKE)
    with common.setup(args) as (config, _):
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
    return common.report("evaluate_melody", {
        "network": f"LSTM{config.pretrain.lstm_units}", "melodies": args.num,
        "sampling_seconds": round(sampled, 2), "sampling_and_statistics_seconds": round(total, 2),
        "reference_melodies": args.reference_num,
        "reference_seconds": round(reference, 2),
        "speedup_per_melody": round(per_melody_reference / per_melody_batched, 1),
    }, args)


if __name__ == "__main__":
    main()
