"""``seqtutor generate``: sample one model and write its sequences (melodies: MIDI files;
molecules: one SMILES file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqtutor import artifacts, domains, layout, sweep, tfrecords
from seqtutor.config import MLE_MODEL
from seqtutor.rl import algorithms
from seqtutor.rl.policy import load_sampler


def generate(config, workdir: Path, model: str, num: int, out: Path) -> list[Path]:
    """Write ``num`` samples of ``model`` into ``out``; returns the written paths.

    Raises:
      ValueError: an unknown model name or a non-positive count.
      MissingArtifactError: the model has not been trained (names the command to run).
    """
    known = (MLE_MODEL, *algorithms.names())
    if sweep.algorithm_of(model) not in known:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(known)} (or an "
                         "algorithm at a sweep point: psi@c=0.25,seed=1)")
    if num <= 0:
        raise ValueError(f"--num must be positive, got {num}")
    pretrain_dir = layout.stage_dir(workdir, "pretrain")
    tune_dir = layout.stage_dir(workdir, "tune")
    artifacts.require_artifact(pretrain_dir, "pretrain", "seqtutor pretrain CONFIG")
    sampler = load_sampler(pretrain_dir, tune_dir, model)
    if sampler is None:
        raise artifacts.MissingArtifactError(
            f"no tuned model {model!r} in {tune_dir}: run "
            f"`seqtutor tune CONFIG --algorithm {sweep.algorithm_of(model)}` first")
    domain = domains.get_domain(config.domain, config.reward, tfrecords.read_vocab(pretrain_dir))
    with domain:
        first = domain.priming_tokens(np.random.default_rng(config.seed), num)
        tokens, _ = sampler.sample(first, domain.episode_length(config.tune.episode_length),
                                   temperature=config.evaluate.temperature, seed=config.seed,
                                   batch_size=config.evaluate.batch_size,
                                   end_token=domain.end_token)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        return domain.export(out, model, tokens)
