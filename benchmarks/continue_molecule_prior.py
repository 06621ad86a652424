"""Experiment: how far more low-rate steps take the molecule prior's validity.

Continues a pretrained prior (never written back) with Adam at a fixed low rate, and after each
chunk of steps prints the eval log perplexity (40 eval batches, as the pretrain stage) and the
fraction of valid molecules among samples from BOS at temperature 1 (RDKit parse).

    python -m benchmarks.continue_molecule_prior [--workdir runs/molecule] [--lr 1.2e-4]
        [--chunk 750] [--chunks 2] [--samples 10000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline import _legacy_keras  # noqa: F401  (before TensorFlow)

import numpy as np
import tensorflow as tf

from components import pretrain, sequence_model
from data_prep import tfrecords


def validity(model, vocab: dict, num: int) -> float:
    from rdkit import Chem, RDLogger
    RDLogger.DisableLog("rdApp.*")
    rows, _ = sequence_model.sample(model, np.full(num, vocab["bos"]), vocab["episode_length"],
                                    seed=1)
    valid = 0
    for row in rows.tolist():
        if vocab["eos"] in row:  # a molecule cut by the cap is invalid
            smiles = "".join(vocab["tokens"][i] for i in row[:row.index(vocab["eos"])])
            valid += Chem.MolFromSmiles(smiles) is not None
    return valid / num


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/molecule")
    parser.add_argument("--lr", type=float, default=1.2e-4)
    parser.add_argument("--chunk", type=int, default=750)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10000)
    args = parser.parse_args()
    data = Path(args.workdir) / "prepare_data"
    vocab = tfrecords.read_vocab(data)
    model = sequence_model.load_model(Path(args.workdir) / "pretrain", vocab)
    model.compile(optimizer=tf.keras.optimizers.Adam(args.lr, clipnorm=5.0),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train = pretrain.make_dataset(data, "train", vocab, 128, 0, training=True,
                                  shuffle_buffer=100000, seed=7)
    eval_ = pretrain.make_dataset(data, "eval", vocab, 128, 0, training=False).take(40)

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
