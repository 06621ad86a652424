"""Benchmark: the molecule task reward on 100,000 molecules (decode, RDKit parse, logP, QED, SA,
rings, penalties; the scorer's process pool over every core) against a bare loop of the same
RDKit calls spread over the same number of processes, both timed in this run with warm pools,
on the first molecules of the MOSES training set, with the config's reward weights. Target
(docs/figures.md): at most 1.2x the bare loop.

    python -m benchmarks.score_molecules [--num 100000] [--workers N (default: every core)]

Prints (and with --output writes) a JSON object: molecules, workers, valid, task_reward_seconds,
bare_rdkit_loop_seconds, ratio, ms_per_molecule_per_core, mean_reward. Smoke (tests):
``--smoke`` (200 molecules, one worker process). The worker processes import this module: no
TensorFlow or Beam at its top.
"""

from __future__ import annotations

import multiprocessing
import os

import numpy as np

from benchmarks import common
from seqtutor.domains.molecule import chemistry, tokens

SMOKE = {"num": 200, "workers": 1}


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


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "configs/molecule.yaml")
    parser.add_argument("--num", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = common.parse_args(parser, argv, SMOKE)
    from seqtutor.domains.molecule.domain import MoleculeDomain

    with common.setup(args) as (config, _):
        reward = config.reward.model_copy(update={"workers": args.workers})
    smiles = common.corpus_molecules(args.num)
    vocab = tokens.vocabulary({t for s in smiles for t in tokens.tokenize(s)}, min_length=10,
                              max_length=60, max_carbon_run=8)
    codec = tokens.Codec(vocab)
    length = vocab["episode_length"]
    actions = np.full((len(smiles), length), tokens.PAD_ID, np.int32)
    for row, s in enumerate(smiles):
        ids = codec.encode(s)[1:][:length]
        actions[row, :len(ids)] = ids

    domain = MoleculeDomain(reward, vocab)
    with domain:  # closes the scorer's pool
        domain.task_reward(actions[:2000])  # start and warm the pool
        rewards, ours = common.timed(domain.task_reward, actions)

    size = max(1, int(np.ceil(len(smiles) / args.workers / 20)))
    chunks = [smiles[i:i + size] for i in range(0, len(smiles), size)]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        pool.map(bare_scores, [smiles[:200]] * args.workers)  # warm
        valid, bare = common.timed(lambda: sum(pool.map(bare_scores, chunks)))

    return common.report("score_molecules", {
        "molecules": len(smiles), "workers": args.workers, "valid": int(valid),
        "task_reward_seconds": round(ours, 2),
        "bare_rdkit_loop_seconds": round(bare, 2),
        "ratio": round(ours / bare, 3),
        "ms_per_molecule_per_core": round(bare / len(smiles) * args.workers * 1000, 3),
        "mean_reward": round(float(rewards.sum(axis=1).mean()), 3),
    }, args)


if __name__ == "__main__":
    main()
