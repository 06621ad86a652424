"""evaluate stage: sample N sequences from every model present and compute the domain's
statistics (melody: the rule statistics of Table 1; molecule: Table 2 plus MOSES metrics).

Sampling runs the whole loop in one graph per batch of 10,000 (``sequence_model.PolicySampler``,
the same policies as the tuner's ``SequencePolicy`` without the TF-Agents wrapper, which costs
twice the time at this batch size); a molecule leaves the batch at its EOS.

Models: ``mle`` (the pretrained model, softmax of its logits) and each tuned algorithm's sampling
policy (softmax over Q or Psi; p(a|s) exp(G) for G). A tuned model that does not exist is
reported in metrics.json (``missing_models``) and the rest is evaluated. The ``data`` row is the
same statistics on the eval split of the corpus (melodies cut into episode-length pieces; whole
molecules), so every model is read against the data it learned from.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from seqtutor import domains, layout, sequence_model, sweep, tfrecords
from seqtutor.config import MLE_MODEL
from seqtutor.components import report
from seqtutor.rl.policy import load_sampler

log = logging.getLogger(__name__)
DATA_ROW = "data"  # the eval split, scored like a model's samples
SHOWN_SAMPLES = 12  # per model, in the report (the melody report plays the first 3)


def model_names(config) -> list[str]:
    """The models to evaluate: ``evaluate.models`` with each algorithm at every sweep point."""
    return [variant for name in config.evaluate.models
            for variant in ([name] if name == MLE_MODEL else config.tune_variants([name]))]


def over_seeds(models: dict[str, dict], groups: dict[str, list[str]]) -> dict[str, dict]:
    """Per group of models that differ only by seed: its evaluated members, and the mean and
    sample standard deviation (None for one member) of every numeric statistic."""
    summary = {}
    for group, members in groups.items():
        present = [member for member in members if member in models]
        if not present:
            continue
        keys = [key for key, value in models[present[0]].items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)]
        values = {key: np.array([float(models[m][key]) for m in present]) for key in keys}
        summary[group] = {
            "models": present,
            "mean": {key: float(v.mean()) for key, v in values.items()},
            "sd": {key: float(v.std(ddof=1)) if len(v) > 1 else None
                   for key, v in values.items()}}
    return summary


def tuned_c(config) -> dict[str, float]:
    """The c each tuned model of ``evaluate.models`` was tuned with: its sweep point's, else
    tune.c."""
    tuned = [name for name in config.evaluate.models if name != MLE_MODEL]
    return {sweep.variant(algorithm, point): c for point in config.points()
            for c in [config.at(point).tune.c] for algorithm in tuned}


def closeness_to_prior(kl: np.ndarray, mask: np.ndarray, mean_task_reward: float,
                       c: float | None) -> dict[str, float]:
    """How far a model's samples are from the prior, and the objective every KL-control
    algorithm maximises at its c.

    ``kl`` [N, T] is KL(pi(.|s_t) || p(.|s_t)) over the vocabulary at each sampled state and
    ``mask`` [N, T] marks the steps inside the episodes. Per step (the frontier's other axis)
    and per sequence: by the chain rule, the mean over samples of the summed per-state KLs
    estimates KL(pi || p) between the sequence distributions. With ``c`` (a tuned model), the
    KL-regularised reward E[r_T] - c KL(pi || p) (TRL's ``objective/rlhf_reward``): it equals
    c (log Z - KL(pi || pi*)) for the common target pi* = p exp(r_T / c) / Z, so at one c the
    model with the larger value is the one nearer pi* (docs/tuning.md).
    """
    closeness = {report.KL_KEY: float(kl[mask].mean()),
                 report.SEQUENCE_KL_KEY: float(np.where(mask, kl, 0.0).sum(axis=1).mean())}
    if c is not None:
        closeness[report.C_KEY] = float(c)
        closeness[report.OBJECTIVE_KEY] = float(
            mean_task_reward - c * closeness[report.SEQUENCE_KL_KEY])
    return closeness


def run(config, inputs: dict[str, Path], output: Path) -> dict:
    """Evaluate every configured model into ``output``; returns a summary per model."""
    options = config.evaluate
    output = Path(output)
    (output / layout.SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
    data_dir = Path(inputs["prepare_data"])
    domain = domains.get_domain(config.domain, config.reward,
                                tfrecords.read_vocab(inputs["pretrain"]), data_dir)
    with domain:  # closes the molecule domain's RDKit scoring processes
        length = domain.episode_length(config.tune.episode_length)
        first_tokens = domain.priming_tokens(np.random.default_rng(config.seed),
                                             options.num_samples)
        tf.keras.utils.set_random_seed(config.seed)

        models, missing, samples, details = {}, [], {}, {}
        prior_weights = tuned_c(config)
        for name in model_names(config):
            sampler = load_sampler(inputs["pretrain"], inputs.get("tune"), name)
            if sampler is None:
                log.warning("evaluate: no tuned model %r (run `seqtutor tune CONFIG "
                            "--algorithm %s`); evaluating the rest", name,
                            sweep.algorithm_of(name))
                missing.append(name)
                continue
            tokens, log_prior, kl = sampler.sample(
                first_tokens, length, temperature=options.temperature, seed=config.seed,
                batch_size=options.batch_size, with_kl=True, end_token=domain.end_token)
            domain.write_samples(output / layout.SAMPLES_DIR / name, tokens)
            samples[name] = tokens[:SHOWN_SAMPLES]
            models[name], details[name] = domain.evaluate(tokens, log_prior)
            models[name].update(closeness_to_prior(kl, domain.step_mask(tokens),
                                                   models[name]["mean_task_reward"],
                                                   prior_weights.get(name)))
            log.info("evaluate/%s: mean r_T %.1f, mean log p %.3f", name,
                     models[name]["mean_task_reward"], models[name]["mean_log_prior"])

        # The data row: eval-split sequences, scored under the prior like a model's samples.
        compositions, observations, actions = domain.data_episodes(
            tfrecords.load_split(data_dir, "eval").as_numpy_iterator(), length, options.num_samples)
        data_log_prior = sequence_model.log_prior_of_episodes(
            sequence_model.load_model(Path(inputs["pretrain"])), observations, actions,
            domain.step_mask(actions).sum(axis=1), options.batch_size)
        domain.write_samples(output / layout.SAMPLES_DIR / DATA_ROW, compositions)
        spread = np.linspace(0, len(compositions) - 1, SHOWN_SAMPLES).astype(int)  # apart
        samples[DATA_ROW] = compositions[np.unique(spread)]
        models[DATA_ROW], details[DATA_ROW] = domain.evaluate(compositions, data_log_prior)

        tuned = [name for name in options.models if name != MLE_MODEL]
        metrics = {"domain": config.domain, "num_samples": options.num_samples, "models": models,
                   "missing_models": missing, domain.details_key: details,
                   "seed_groups": over_seeds(models, sweep.seed_groups(tuned, config.points())),
                   **domain.metrics_extras()}
        (output / layout.METRICS_FILE).write_text(json.dumps(metrics, indent=1) + "\n")
        report_path = report.write_report(output, metrics, samples,
                                          report.read_curves(inputs.get("tune"), models),
                                          domain)
        log.debug("evaluate: wrote %s", report_path.name)  # `seqtutor run` prints its path
        return {"models": sorted(models), "missing_models": missing,
                **{f"{name}_mean_task_reward": round(m["mean_task_reward"], 3)
                   for name, m in models.items()}}
