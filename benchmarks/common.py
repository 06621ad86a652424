"""What every benchmark script shares: its flags, its config and workdir, the artifacts it
measures on, timing, and writing its result.

A script's ``main(argv)`` builds its flags with :func:`parser` and :func:`parse_args`, gets its
config and workdir from :func:`setup`, makes any prepare_data or pretrain artifact it needs
with :func:`artifact`, and ends with :func:`report`, which prints the result as JSON (with the
machine it came from), writes ``--output`` (``.json`` or ``.csv``) and returns it.

``--smoke`` runs the same code at tiny sizes in a temporary workdir: the domain's smoke config,
each script's own tiny sizes as flag defaults, an in-process Beam runner and, for molecules, a
SMILES file of the corpus's first molecules (the built-in corpus is read whole, about 40 s even
for a small sample). tests/test_benchmarks.py runs every script that way; its figures mean
nothing.

Heavy modules (TensorFlow, Beam) are imported inside the functions: the molecule
scoring benchmark's worker processes import this module.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from seqtutor import config as config_lib
from seqtutor import layout
from seqtutor.pipeline import runner

SMOKE_CONFIGS = {"melody": "melody_smoke",  # built-in configs: any working directory
                 "molecule": "molecule_smoke"}
IN_PROCESS_BEAM = ["--runner=DirectRunner", "--direct_running_mode=in_memory",
                   "--direct_num_workers=1"]
SMOKE_TUNES = 12  # the melody smoke corpus: the first built-in tunes
SMOKE_MOLECULES = 400  # the molecule smoke corpus: the first MOSES molecules
SMOKE_SMILES_FILE = "smoke_molecules.smi"
# A smoke run's network and batch, where the smoke config's are larger than a check needs.
SMOKE_NETWORK = [("pretrain.lstm_units", [16]), ("pretrain.embedding_dim", 8),
                 ("pretrain.batch_size", 16), ("pretrain.shuffle_buffer", 500)]


# -- flags -------------------------------------------------------------------------------------

def parser(doc: str, config: str) -> argparse.ArgumentParser:
    """The flags every script takes; the script adds its own sizes."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=config,
                        help="config file or built-in config name (default: %(default)s; with "
                             "--smoke: the domain's smoke config)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value, as seqtutor --set")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="the run's workdir: its artifacts are used as they are, missing "
                             "ones are made there first (default: runs/<config name>; with "
                             "--smoke, or for a benchmark of prepare_data, a temporary folder)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes in a temporary workdir: checks that the script runs "
                             "(tests/test_benchmarks.py); the figures mean nothing")
    parser.add_argument("--output", type=Path, default=None,
                        help="also write the result to this file (.json, or .csv: one row)")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None,
               smoke: dict[str, Any]) -> argparse.Namespace:
    """``argv`` parsed; with ``--smoke``, the flags left at their defaults take the values of
    ``smoke`` (the script's tiny sizes) instead."""
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in smoke.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    return args


# -- config, workdir and artifacts ---------------------------------------------------------------

@contextlib.contextmanager
def setup(args: argparse.Namespace, overrides: list = (), *, smoke_overrides: list = (),
          temporary_workdir: bool = False) -> Iterator[tuple[config_lib.Config, Path]]:
    """(config, workdir) of a benchmark run.

    The config is ``--config`` with, in this order, the smoke data settings and
    ``smoke_overrides`` (the script's tiny sizes) with ``--smoke``, ``overrides`` (from the
    script's own flags) and ``--set``. The workdir is ``--workdir``,
    else a temporary folder (removed at the end) with ``--smoke`` or ``temporary_workdir``,
    else runs/<config name>.
    """
    with contextlib.ExitStack() as stack:
        workdir = args.workdir
        if workdir is None and (args.smoke or temporary_workdir):
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="benchmark-")))
        overrides = [*overrides, *args.overrides]
        if args.smoke:
            domain = config_lib.load_config(args.config).domain
            overrides = [*smoke_data_overrides(domain, workdir), *smoke_overrides, *overrides]
        config = config_lib.load_config(args.config, overrides)
        yield config, workdir or runner.default_workdir(config)


def smoke_data_overrides(domain: str, workdir: Path) -> list:
    """prepare_data settings of a smoke run: Beam in this process, and a few melodies or the
    corpus's first :data:`SMOKE_MOLECULES` molecules (written to a file in ``workdir``)."""
    overrides = [("prepare_data.beam_args", IN_PROCESS_BEAM)]
    if domain == "melody":
        overrides.append(("prepare_data.max_builtin_tunes", SMOKE_TUNES))
    if domain == "molecule":
        smiles = workdir / SMOKE_SMILES_FILE
        if not smiles.is_file():
            workdir.mkdir(parents=True, exist_ok=True)
            smiles.write_text("".join(s + "\n" for s in corpus_molecules(SMOKE_MOLECULES)))
        overrides += [("prepare_data.builtin_corpus", "none"),
                      ("prepare_data.input", [str(smiles)]),
                      ("prepare_data.sample_size", None)]
    return overrides


def corpus_molecules(count: int) -> list[str]:
    """The first ``count`` SMILES of the built-in MOSES training set."""
    from seqtutor.domains.molecule import reader

    with gzip.open(reader.moses_train_file(), "rt") as handle:
        next(handle)  # the CSV header
        return [line.split(",")[0].strip() for line, _ in zip(handle, range(count))]


def artifact(config: config_lib.Config, stage: str, workdir: Path) -> Path:
    """``WORKDIR/<stage>/``: an artifact there is used as it is (whatever settings made it); a
    missing one is made first, with its missing inputs, by the stage's own code."""
    path = layout.stage_dir(workdir, stage)
    if not layout.is_complete(path):
        for source in runner.stage(stage).inputs:
            artifact(config, source, workdir)
        print(f"benchmark: no {stage} artifact in {workdir}: making it", file=sys.stderr,
              flush=True)
        runner.run_stage(config, stage, workdir)
    return path


def read_vocab(config: config_lib.Config, workdir: Path) -> tuple[Path, dict]:
    """The prepare_data artifact (made first when missing) and its vocabulary."""
    from seqtutor import tfrecords

    data = artifact(config, "prepare_data", workdir)
    return data, tfrecords.read_vocab(data)


def training_batches(config: config_lib.Config, workdir: Path, bucket_by_length: bool):
    """(the pretrain stage's training batches of the prepare_data artifact, its vocabulary),
    shuffled through at most 20,000 records: the benchmarks time steps, not the mixing."""
    from seqtutor.components import pretrain

    data, vocab = read_vocab(config, workdir)
    options = config.pretrain
    return pretrain.make_dataset(
        data, "train", vocab, options.batch_size, options.skip_first_losses, training=True,
        shuffle_buffer=min(options.shuffle_buffer, 20000), bucket_by_length=bucket_by_length
    ), vocab


def mle_model(vocab_size: int, options, lstm_units: list[int] | None = None,
              policy: str = "float32", steps_per_execution: int = 1):
    """The pretrain stage's network and optimizer (``options``: the config's pretrain
    section), compiled for Keras fit; ``lstm_units`` replaces the config's sizes."""
    import tensorflow as tf

    from seqtutor import sequence_model
    from seqtutor.components import pretrain

    with sequence_model.global_dtype_policy(policy):
        model = sequence_model.build_model(vocab_size, lstm_units or options.lstm_units,
                                           options.embedding_dim, options.dropout, options.l2)
        model.compile(optimizer=pretrain._optimizer(options),
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      steps_per_execution=steps_per_execution)
    return model


# -- timing -------------------------------------------------------------------------------------

def timed(function: Callable[..., Any], *args, **kwargs) -> tuple[Any, float]:
    """(what ``function`` returns, its wall-clock seconds)."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def alternate(measures: dict[Any, Callable[[], Any]], rounds: int) -> dict[Any, list]:
    """Each measure's results over ``rounds`` rounds, the measures taking turns within a round,
    so that other work on the machine slows each alike and their ratio holds."""
    results = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            results[name].append(measure())
    return results


def median(values) -> float:
    return float(np.median(values))


# -- results ------------------------------------------------------------------------------------

def machine() -> str:
    """The machine a figure came from: processor, cores, memory, accelerators, versions."""
    parts = [platform.machine()]
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                  if line.startswith("flags")), [])
    bf16 = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]
    if model:
        parts.append(model + (f" ({', '.join(bf16)})" if bf16 else ""))
    parts.append(f"{os.cpu_count()} cores")
    with contextlib.suppress(ValueError, OSError, AttributeError):
        parts.append(f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB")
    import tensorflow as tf

    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]
    parts.append(", ".join(gpus) if gpus else "no GPU")
    parts.append(f"Python {platform.python_version()}")
    parts.append(f"TensorFlow {importlib.metadata.version('tensorflow')}")
    return ", ".join(parts)


def report(name: str, result: dict, args: argparse.Namespace) -> dict:
    """Print the result as JSON, write ``--output`` and return it (``benchmark``, ``machine``
    and, for a smoke run, ``smoke`` first)."""
    result = {"benchmark": name, "machine": machine(), **({"smoke": True} if args.smoke else {}),
              **result}
    text = json.dumps(result, indent=1)
    print(text, flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        if args.output.suffix == ".csv":
            row = flatten(result)
            with args.output.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(row))
                writer.writeheader()
                writer.writerow(row)
        else:
            args.output.write_text(text + "\n")
    return result


def flatten(result: dict, prefix: str = "") -> dict[str, Any]:
    """One CSV row: nested keys joined with dots, lists as JSON."""
    row = {}
    for key, value in result.items():
        if isinstance(value, dict):
            row.update(flatten(value, f"{prefix}{key}."))
        else:
            row[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return row
