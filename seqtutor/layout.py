"""The artifact layout: every file and folder name of a workdir, in one place.

Each stage writes one directory, ``WORKDIR/<stage>/`` (tune: ``WORKDIR/tune/<algorithm>/``, or
``WORKDIR/tune/<algorithm>@<point>/`` per sweep point, ``seqtutor.sweep``),
holding ``artifact.json`` (``seqtutor.artifacts``) beside the files below. The stages, the local
runner, ``seqtutor generate`` and the report use these names and helpers; none types another
stage's paths.
"""

from __future__ import annotations

from pathlib import Path

ARTIFACT_FILE = "artifact.json"       # every artifact: stage, fingerprints, config, summary

# prepare_data: TFRecord shards (seqtutor.tfrecords names them), TFDS metadata, and
VOCAB_FILE = "vocab.json"             # also copied beside every model
STATS_FILE = "stats.json"             # records in and out, each drop with its reason

# pretrain and tune
MODEL_FILE = "model.keras"            # the sequence model (tune: the tuned values' network)
CHECKPOINT_DIR = "checkpoints"        # resumable training state
LOGS_DIR = "logs"                     # TensorBoard
METRICS_FILE = "metrics.json"         # pretrain: eval accuracy and log perplexity; evaluate
CURVES_FILE = "curves.csv"            # tune: CURVE_FIELDS, then the domain's curve_fields
CURVE_FIELDS = ("step", "mean_task_reward", "mean_log_prior")  # its first columns
POLICY_DIR = "policy"                 # tune: the TF-Agents PolicySaver export
TUNE_SUMMARY_FILE = "tune.json"       # tune: steps and the first and last curve points

# evaluate
SAMPLES_DIR = "samples"               # <model>.npz (melody) or <model>.smi (molecule)
REPORT_FILE = "report.html"
FRONTIER_FILE = "frontier.csv"        # the report's frontier: r_T and log p per model or group
SCORE_KEYS_FILE = "score_keys.json"   # what each row was scored under: a later run keeps
SHOWN_SAMPLES_FILE = "shown.npz"      # the unchanged rows, with their shown samples


def stage_dir(workdir: str | Path, stage: str, variant: str | None = None) -> Path:
    """``WORKDIR/<stage>/``, or ``WORKDIR/<stage>/<variant>/`` for a stage with variants."""
    path = Path(workdir) / stage
    return path if variant is None else path / variant


def tuned_dir(tune_dir: str | Path, model: str) -> Path:
    """One tuned model's artifact inside the tune stage's directory (``model``: an algorithm,
    or an algorithm at a sweep point)."""
    return Path(tune_dir) / model


def is_complete(artifact_dir: str | Path) -> bool:
    """Whether a finished artifact (with its artifact.json) is there."""
    return (Path(artifact_dir) / ARTIFACT_FILE).is_file()
