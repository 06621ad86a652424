"""``seqtutor generate``: sample one model and write its sequences (melodies: MIDI files;
molecules: one SMILES file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqtutor import domains
from seqtutor.components import evaluate
from seqtutor import tfrecords
from seqtutor import artifacts
from seqtutor.config import MODELS


def generate(config, workdir: Path, model: str, num: int, out: Path) -> list[Path]:
    """Write ``num`` samples of ``model`` into ``out``; returns the written paths.

    Raises:
      ValueError: an unknown model name or a non-positive count.
      MissingArtifactError: the model has not been trained (names the command to run).
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if num <= 0:
        raise ValueError(f"--num must be positive, got {num}")
    workdir = Path(workdir)
    artifacts.require_artifact(workdir / "pretrain", "pretrain", "seqtutor pretrain CONFIG")
    inputs = {"pretrain": workdir / "pretrain", "tune": workdir / "tune"}
    sampler = evaluate.load_sampler(inputs, model)
    if sampler is None:
        raise artifacts.MissingArtifactError(
            f"no tuned model {model!r} in {workdir / 'tune'}: run "
            f"`seqtutor tune CONFIG --algorithm {model}` first")
    domain = domains.get_domain(config.domain, config.reward,
                                tfrecords.read_vocab(workdir / "pretrain"))
    with domain:
        first = domain.priming_tokens(np.random.default_rng(config.seed), num)
        tokens, _ = sampler.sample(first, domain.episode_length(config.tune.episode_length),
                                   temperature=config.evaluate.temperature, seed=config.seed,
                                   batch_size=config.evaluate.batch_size)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        return domain.export(out, model, tokens)
