"""Experiment: how valid the molecules of the tuner's collect policy are, against the policy's own.

Plays episodes from a model (the prior by default) as the tune stage collects them: with the
config's epsilon around policy samples (`exploration: epsilon_boltzmann`), and without epsilon
(plain samples of the policy). With a prior that is already about 94% valid, the episodes that
exploration breaks outnumber the policy's own invalid ones in the replay.

    python -m benchmarks.collect_validity [--config configs/molecule.yaml]
        [--model runs/molecule/pretrain] [--episodes 5000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tensorflow as tf

from seqtutor import domains
from benchmarks import machine
from seqtutor import sequence_model
from seqtutor.rl import algorithms
from seqtutor.rl.collect import collect_episodes
from seqtutor.rl.policy import SequencePolicy
from seqtutor import tfrecords
from seqtutor import config as config_lib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/molecule.yaml")
    parser.add_argument("--model", type=Path, default=Path("runs/molecule/pretrain"),
                        help="a pretrain or tune/<algorithm> directory (its policy: softmax of "
                             "the saved logits)")
    parser.add_argument("--episodes", type=int, default=5000)
    args = parser.parse_args()
    config = config_lib.load_config(args.config)
    vocab = tfrecords.read_vocab(args.model)
    model = sequence_model.load_model(args.model, vocab)
    domain = domains.get_domain(config.domain, config.reward, vocab)
    length = domain.episode_length(config.tune.episode_length)
    rng = np.random.default_rng(3)
    print(machine(), flush=True)
    with domain:  # closes the RDKit scoring processes
        for epsilon in (None, config.tune.epsilon_start):
            # The prior's policy is softmax(logits): "psi" over the saved model is exactly that.
            policy = SequencePolicy(model, model, algorithms.get("psi"), epsilon=epsilon)
            play = tf.function(lambda first: collect_episodes(policy, first, length),
                               autograph=False)
            _, actions = play(tf.constant(domain.priming_tokens(rng, args.episodes)))
            point = domain.curve_point(actions.numpy())
            print(f"epsilon {epsilon}: valid {point['valid']:.4f}  "
                  f"mean r_T {point['mean_task_reward']:.3f}  ({args.episodes} episodes)",
                  flush=True)


if __name__ == "__main__":
    main()
