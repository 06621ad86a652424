"""Experiment: how far more low-rate steps take the molecule prior's validity.

Continues a pretrained prior (never written back) with Adam at a fixed low rate, and after each
chunk of steps prints the eval log perplexity (on the pretrain stage's eval batches) and the
fraction of valid molecules among samples from BOS at temperature 1 (RDKit parse).

    python -m benchmarks.continue_molecule_prior [--config configs/molecule.yaml]
        [--workdir runs/molecule] [--lr 1.2e-4] [--chunk 750] [--chunks 2] [--samples 10000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from benchmarks import machine
from seqtutor.components import pretrain
from seqtutor import sequence_model
from seqtutor import tfrecords
from seqtutor.domains.molecule import chemistry, tokens
from seqtutor import config as config_lib
from seqtutor.pipeline import runner


def validity(model, vocab: dict, num: int) -> float:
    """Fraction of ``num`` samples that RDKit parses (a molecule cut by the cap is invalid)."""
    actions, _ = sequence_model.sample(model, np.full(num, vocab["bos"]),
                                       vocab["episode_length"], seed=1)
    smiles, finished = tokens.Codec(vocab).decode_batch(actions)
    return sum(done and chemistry.parse(s) is not None for s, done in zip(smiles, finished)) / num


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/molecule.yaml")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--lr", type=float, default=1.2e-4)
    parser.add_argument("--chunk", type=int, default=750)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10000)
    args = parser.parse_args()
    config = config_lib.load_config(args.config)
    options = config.pretrain
    workdir = args.workdir or runner.default_workdir(config)
    data = workdir / "prepare_data"
    vocab = tfrecords.read_vocab(data)
    model = sequence_model.load_model(workdir / "pretrain", vocab)
    clip = {"clipnorm": options.clip_norm} if options.clip_norm else {}
    model.compile(optimizer=tf.keras.optimizers.Adam(args.lr, **clip),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train = pretrain.make_dataset(data, "train", vocab, options.batch_size,
                                  options.skip_first_losses, training=True,
                                  shuffle_buffer=options.shuffle_buffer, seed=7)
    eval_ = pretrain.eval_dataset(data, vocab, options, config.seed)
    print(machine(), flush=True)

    def report(steps: int, seconds: float) -> None:
        ppl = pretrain.evaluate(model, eval_)["eval_log_perplexity"]
        print(f"steps {steps:6d}  train {seconds:7.1f} s  eval log perplexity {ppl:.4f}  "
              f"valid {validity(model, vocab, args.samples):.4f}", flush=True)

    report(0, 0.0)
    for chunk in range(1, args.chunks + 1):
        start = time.perf_counter()
        model.fit(train, steps_per_epoch=args.chunk, epochs=1, verbose=0)
        report(chunk * args.chunk, time.perf_counter() - start)


if __name__ == "__main__":
    main()
