"""``seqtutor generate``: sample one model and write its sequences (melodies: MIDI files;
molecules: one SMILES file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqtutor import artifacts, console, domains, layout, sweep, tfrecords
from seqtutor.config import MLE_MODEL
from seqtutor.rl import algorithms
from seqtutor.rl.policy import load_sampler


def generate(config, workdir: Path, model: str, num: int, out: Path) -> list[Path]:
    """Write ``num`` samples of ``model`` into ``out``; returns the written paths.

    Raises:
      ValueError: an unknown model name, a point the config's sweep does not have, a
        non-positive count or an ``out`` that is a file; all before any work.
      MissingArtifactError: the model has not been trained (names the command to run).
    """
    known = (MLE_MODEL, *algorithms.names())
    algorithm = sweep.algorithm_of(model)
    if algorithm not in known:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(known)} (or an "
                         "algorithm at a sweep point: psi@c=0.25,seed=1)")
    points = [point.name for point in config.points()] if algorithm != MLE_MODEL else [""]
    if sweep.point_of(model) not in points:
        hint = (f"name it {algorithm!r}" if points == [""] else
                f"its points: {console.name_list(points)}, as in {algorithm}@{points[0]}")
        raise ValueError(f"model {model!r}: the config has no such point ({hint})")
    if num <= 0:
        raise ValueError(f"--num must be positive, got {num}")
    if Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out {out} is a file; name a directory (made if missing)")
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
