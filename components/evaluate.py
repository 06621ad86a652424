"""evaluate stage: sample N sequences from every model present and compute the domain's
statistics (melody: the rule statistics of Table 1; molecule: Table 2 plus MOSES metrics).

Sampling runs the whole loop in one graph per batch of 10,000 (``sequence_model.PolicySampler``,
the same policies as the tuner's ``SequencePolicy`` without the TF-Agents wrapper, which costs
twice the time at this batch size); a molecule leaves the batch at its EOS.

Models: ``mle`` (the pretrained model, softmax of its logits) and each tuned algorithm's sampling
policy (softmax over Q or Psi; p(a|s) exp(G) for G). A tuned model that does not exist is
reported in metrics.json (``missing_models``) and the rest is evaluated. The ``data`` row is the
same statistics on up to N eval-split sequences drawn at random with the config's seed
(melodies cut into episode-length pieces; whole molecules), so every model is read against the
data it learned from.

A rerun keeps the rows that cannot have changed (``previous``, the last evaluation): a row whose
model artifact, prior, data, evaluation settings and code are those it was scored under is
copied with its samples instead of sampled and scored again, so a sweep that grew by a point
scores that point alone. Sampling is seeded per model, so a kept row is the row a fresh run
would compute.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from seqtutor import (artifacts, console, domains, layout, plugins, sequence_model, sweep,
                      tfrecords)
from seqtutor.config import EVALUATE_READS, MLE_MODEL
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


def score_keys(config, inputs: dict[str, Path], names: list[str]) -> dict[str, str]:
    """What each row's scores depend on, hashed: the settings evaluate reads
    (``EVALUATE_READS``, but the evaluate section's model list), the model's c and algorithm,
    the records of the data, the prior and the tuned model (a model retrained under the same
    settings is a new record), the code, the libraries and the devices. The data row is keyed
    under ``data``."""
    settings = {key: config.value(key) for key in EVALUATE_READS}
    settings["evaluate"].pop("models")  # another model's presence does not change a row
    common = {"settings": settings,
              "inputs": {stage: artifacts.record_digest(inputs[stage])
                         for stage in ("prepare_data", "pretrain")},
              "code": artifacts.code_version(),
              "domain_code": plugins.outside_code(plugins.domain_class(config.domain)),
              "libraries": {name: _version(name) for name in ("tensorflow", "numpy", "rdkit")},
              "devices": sorted({d.device_type for d in tf.config.list_physical_devices()})}
    c = tuned_c(config)
    keys = {}
    for name in [*names, DATA_ROW]:
        tuned = name not in (MLE_MODEL, DATA_ROW)
        payload = {**common, "model": name, "c": c.get(name),
                   "algorithm": (plugins.describe_algorithm(sweep.algorithm_of(name))
                                 if tuned else None),
                   "tuned": (artifacts.record_digest(layout.tuned_dir(inputs["tune"], name))
                             if tuned and inputs.get("tune") is not None else None)}
        keys[name] = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str)
                                    .encode()).hexdigest()
    return keys


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def kept_rows(previous: Path | None, keys: dict[str, str], domain
              ) -> dict[str, tuple[dict, dict, np.ndarray]]:
    """The rows of the ``previous`` evaluation that still hold: {name: (statistics, details,
    shown samples)} for each row whose key is unchanged and whose samples file is the one it
    wrote (its digest, recorded beside the key). Nothing (everything is scored again) when the
    previous artifact lacks or garbles a file."""
    if previous is None or not layout.is_complete(previous):
        return {}
    previous = Path(previous)
    if not (previous / layout.SCORE_KEYS_FILE).is_file():
        log.info("evaluate: the last evaluation records no score keys (an older version made "
                 "it); scoring every model")
        return {}
    try:
        old_keys = json.loads((previous / layout.SCORE_KEYS_FILE).read_text())
        metrics = json.loads((previous / layout.METRICS_FILE).read_text())
        with np.load(previous / layout.SHOWN_SAMPLES_FILE) as shown_file:
            shown = {name: shown_file[name] for name in shown_file.files}
        rows, details = metrics["models"], metrics[domain.details_key]
        return {name: (rows[name], details[name], shown[name]) for name, key in keys.items()
                if isinstance(rows.get(name), dict) and name in details and name in shown
                and old_keys.get(name) == row_key(key, sample_file(previous, name, domain))
                and old_keys[name]["samples_sha256"] is not None}
    except Exception as error:  # noqa: BLE001 - any damage: score every row again, never fail
        log.warning("evaluate: scoring every model again (the last evaluation's scores are "
                    "unreadable: %s: %s)", type(error).__name__, error)
        return {}


def row_key(score_key: str, samples: Path) -> dict[str, str | None]:
    """What score_keys.json records of a row: its score key and its samples file's digest
    (None when there is no file), so that a damaged samples file is not kept."""
    try:
        digest = hashlib.sha256(samples.read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"key": score_key, "samples_sha256": digest}


def sample_file(evaluation: Path, name: str, domain) -> Path:
    """A row's samples file in an evaluation's directory."""
    return Path(evaluation) / layout.SAMPLES_DIR / f"{name}{domain.sample_suffix}"


def run(config, inputs: dict[str, Path], output: Path, previous: Path | None = None) -> dict:
    """Evaluate every configured model into ``output``, keeping the rows of the ``previous``
    evaluation that still hold; returns a summary per model."""
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
        keys = score_keys(config, inputs, model_names(config))
        kept = kept_rows(previous, keys, domain)
        if kept:
            log.info("evaluate: keeping the scores of %d unchanged row%s of the last "
                     "evaluation; scoring the rest", len(kept), "s" if len(kept) > 1 else "")

        def keep(name: str) -> bool:
            if name not in kept:
                return False
            shutil.copyfile(sample_file(previous, name, domain),
                            sample_file(output, name, domain))
            models[name], details[name], samples[name] = kept[name]
            return True

        for name in model_names(config):
            if keep(name):
                continue
            sampler = load_sampler(inputs["pretrain"], inputs.get("tune"), name)
            if sampler is None:
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

        if missing:
            algorithms = sorted({sweep.algorithm_of(name) for name in missing})
            log.warning("evaluate: %d model%s not tuned, evaluating the rest: %s (`seqtutor tune "
                        "CONFIG --keep-finished --algorithm NAME` tunes them, NAME %s; "
                        "`seqtutor status CONFIG` lists them)", len(missing),
                        "s" * (len(missing) != 1), console.name_list(missing),
                        " or ".join(algorithms))
        if not keep(DATA_ROW):
            # The data row: eval-split sequences, scored under the prior like samples, drawn
            # at random (the first in file order share the corpus order's drift).
            compositions, observations, actions = domain.data_episodes(
                tfrecords.records_in_random_order(data_dir, "eval", config.seed), length,
                options.num_samples)
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
        (output / layout.SCORE_KEYS_FILE).write_text(json.dumps(
            {name: row_key(keys[name], sample_file(output, name, domain)) for name in models},
            indent=1) + "\n")
        np.savez_compressed(output / layout.SHOWN_SAMPLES_FILE, **samples)
        report_path = report.write_report(output, metrics, samples,
                                          report.read_curves(inputs.get("tune"), models),
                                          domain)
        log.debug("evaluate: wrote %s", report_path.name)  # `seqtutor run` prints its path
        return {"models": sorted(models), "missing_models": missing, "kept_rows": len(kept),
                **{f"{name}_mean_task_reward": round(m["mean_task_reward"], 3)
                   for name, m in models.items()}}
