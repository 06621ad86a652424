"""Benchmark: the molecule task reward on 100,000 molecules (decode, RDKit parse, logP, QED, SA,
rings, penalties; the scorer's process pool over every core) against a bare loop of the same
RDKit calls spread over the same number of processes, both timed in this run with warm pools.
Target (issue 7): at most 1.2x the bare loop.

    python -m benchmarks.score_molecules [--num 100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import time

import numpy as np

from benchmarks import machine
from seqtutor.data_prep import molecule_job
from seqtutor.domains.molecule import chemistry, tokens


def bare_scores(smiles_chunk):
    """The RDKit calls alone: parse, logP, QED, SA."""
    from rdkit import Chem
    from rdkit.Chem import QED, Crippen

    sa = chemistry.sascorer()
    out = []
    for smiles in smiles_chunk:
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None:
            out.append((Crippen.MolLogP(mol), QED.qed(mol), sa.calculateScore(mol)))
    return len(out)


def corpus_molecules(count: int) -> list[str]:
    with gzip.open(molecule_job.moses_train_file(), "rt") as handle:
        next(handle)
        return [next(handle).strip() for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    from seqtutor.domains.molecule.config import MoleculeRewardConfig
    from seqtutor.domains.molecule.domain import MoleculeDomain

    smiles = corpus_molecules(args.num)
    vocab = tokens.vocabulary({t for s in smiles for t in tokens.tokenize(s)}, min_length=10,
                              max_length=60, max_carbon_run=8)
    codec = tokens.Codec(vocab)
    length = vocab["episode_length"]
    actions = np.full((len(smiles), length), tokens.PAD_ID, np.int32)
    for row, s in enumerate(smiles):
        ids = codec.encode(s)[1:][:length]
        actions[row, :len(ids)] = ids

    domain = MoleculeDomain(MoleculeRewardConfig(workers=args.workers), vocab)
    domain.task_reward(actions[:2000])  # start and warm the pool
    started = time.perf_counter()
    rewards = domain.task_reward(actions)
    ours = time.perf_counter() - started
    domain.scorer.close()

    size = max(1, int(np.ceil(len(smiles) / args.workers / 20)))
    chunks = [smiles[i:i + size] for i in range(0, len(smiles), size)]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        pool.map(bare_scores, [smiles[:200]] * args.workers)  # warm
        started = time.perf_counter()
        valid = sum(pool.map(bare_scores, chunks))
        bare = time.perf_counter() - started

    print(json.dumps({
        "benchmark": "score_molecules",
        "machine": machine(),
        "molecules": len(smiles), "workers": args.workers, "valid": int(valid),
        "task_reward_seconds": round(ours, 2),
        "bare_rdkit_loop_seconds": round(bare, 2),
        "ratio": round(ours / bare, 3),
        "ms_per_molecule_per_core": round(bare / len(smiles) * args.workers * 1000, 3),
        "mean_reward": round(float(rewards.sum(axis=1).mean()), 3),
    }, indent=1))


if __name__ == "__main__":
    main()
