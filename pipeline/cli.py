"""The ``seqtutor`` command line (see docs/architecture.md for the contract).

Beam pipeline options go after ``--`` on ``run``, ``prepare-data`` and ``status`` (which reads
them as prepare_data's fingerprint does), as in Beam's examples:
``seqtutor prepare-data configs/melody.yaml -- --runner=DataflowRunner --project=P``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from seqtutor import artifacts, config as config_lib, console, sweep
from seqtutor.pipeline import runner
from seqtutor.rl import algorithms as rl_algorithms

def _common(parser: argparse.ArgumentParser, workdir: bool = True) -> None:
    parser.add_argument("config", help="a YAML config file, or a built-in config's name: "
                        f"{', '.join(config_lib.builtin_configs())}")
    if workdir:  # compile writes no artifact: its pipeline runs write under pipeline_root
        parser.add_argument("--workdir", type=Path, default=None,
                            help="artifact directory (default: runs/<config name>/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override one config value (repeatable)")


def _corpus_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", action="append", default=None, metavar="GLOB",
                        help="your own corpus files, directories or globs (repeatable)")
    parser.add_argument("--builtin-corpus", default=None, metavar="NAME",
                        help="music21_folk (melody), moses (molecule) or none "
                        "(overrides the config)")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _max_points(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-points", type=positive_int, default=sweep.MAX_POINTS, metavar="N",
                        help="the most points the config's sweep may have "
                             f"(default {sweep.MAX_POINTS})")


def _algorithm_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--algorithm", action="append", default=None,
                        help="an algorithm of the table: q, psi, g, rl_only, dap, rloo_kl or a "
                             "registered one (repeatable; default: the config's list)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqtutor",
        description="Sequence Tutor: pretrain an LSTM by MLE, tune it with KL-control RL.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="everything: debug logging, Beam's worker lines, TensorFlow's")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="the whole pipeline, locally, with caching")
    _common(run)
    _corpus_flags(run)
    run.add_argument("--only", action="append", default=[], choices=runner.STAGE_NAMES,
                     help="run just this stage (repeatable)")
    run.add_argument("--from", dest="from_stage", choices=runner.STAGE_NAMES,
                     help="rerun this stage and every later one")
    run.add_argument("--force", action="store_true",
                     help="rerun every stage from scratch (a finished pretraining whose max_steps "
                          "grew is otherwise continued, and evaluate keeps its unchanged rows)")
    _max_points(run)

    prepare = commands.add_parser("prepare-data", help="the Beam job: corpus -> TFRecords")
    _common(prepare)
    _corpus_flags(prepare)

    pretrain = commands.add_parser("pretrain", help="train the MLE LSTM")
    _common(pretrain)

    tune = commands.add_parser("tune", help="tune the pretrained model with KL-regularised RL")
    _common(tune)
    _algorithm_flag(tune)
    tune.add_argument("--keep-finished", action="store_true",
                      help="keep each finished output of the same config keys and inputs, also "
                           "one made by an earlier code version, and tune only the others (a "
                           "sweep carried on after an interruption or an upgrade)")
    _max_points(tune)

    compile_ = commands.add_parser("compile", help="the KFP v2 pipeline spec (Vertex/Kubeflow)")
    _common(compile_, workdir=False)
    compile_.add_argument("--output", type=Path, required=True, help="pipeline spec YAML")
    compile_.add_argument("--image", default=None,
                          help="the container image of prepare_data and evaluate (the "
                               "Dockerfile's cpu variant; default: the tag scripts/"
                               "build_image.sh gives it); a digest (@sha256:...) pins it")
    compile_.add_argument("--gpu-image", default=None,
                          help="the container image of pretrain and tune (the Dockerfile's gpu "
                               "variant; default: --image when it is named, else the tag "
                               "scripts/build_image.sh gives the gpu variant)")
    compile_.add_argument("--accelerator-type", default="NVIDIA_TESLA_T4",
                          help="accelerator type of each tune task")
    compile_.add_argument("--accelerator-count", type=int, default=1,
                          help="accelerators of each tune task (0: none)")
    compile_.add_argument("--tune-cpu", default=None, help="CPU limit of each tune task (e.g. 8)")
    compile_.add_argument("--tune-memory", default=None,
                          help="memory limit of each tune task (e.g. 32G)")
    compile_.add_argument("--pretrain-accelerator-type", default=None,
                          help="accelerator type of the pretrain task (default: the tune "
                               "tasks')")
    compile_.add_argument("--pretrain-accelerator-count", type=int, default=0,
                          help="accelerators of the pretrain task (0: none)")
    compile_.add_argument("--parallelism", type=int, default=0,
                          help="tune tasks at once (0: as many as the platform allows)")

    evaluate = commands.add_parser(
        "evaluate", help="sample every model, rule statistics (keeps the unchanged rows of the "
                         "last evaluation)")
    _common(evaluate)
    evaluate.add_argument("--rescore", action="store_true",
                          help="sample and score every model again, keeping no row of the "
                               "last evaluation")

    generate = commands.add_parser("generate", help="write samples of one model")
    _common(generate)
    generate.add_argument("--model", required=True,
                          help="mle, an algorithm's name, or an algorithm at a sweep point "
                               "(psi@c=0.25,seed=1)")
    generate.add_argument("--num", type=int, required=True, help="how many sequences")
    generate.add_argument("--out", type=Path, required=True, help="output directory")

    status = commands.add_parser(
        "status", help="where each stage and tune point stands: done, running (by whom), "
                       "stopped (at which step), to do; writes nothing")
    _common(status)
    _corpus_flags(status)  # they are in prepare_data's fingerprint
    _algorithm_flag(status)
    _max_points(status)
    return parser


def status_table(rows: list[runner.ArtifactStatus]) -> str:
    """One line per artifact, then the tune points counted by state."""
    width = max(len(row.name) for row in rows)
    lines = [f"{row.name:<{width}}  {row.state}{f' ({row.detail})' if row.detail else ''}"
             for row in rows]
    points = [row.state for row in rows if row.name.startswith("tune/")]
    counts = ", ".join(f"{points.count(state)} {state}" for state in runner.STATES
                       if state in points)
    lines.append(f"tune: {len(points)} point{'s' * (len(points) != 1)}"
                 + (f": {counts}" if counts else ""))
    return "\n".join(lines)


def _load(args) -> config_lib.Config:
    overrides = list(args.overrides)
    if getattr(args, "input", None):
        overrides.append(("prepare_data.input", list(args.input)))
    if getattr(args, "builtin_corpus", None):
        overrides.append(("prepare_data.builtin_corpus", args.builtin_corpus))
    config = config_lib.load_config(args.config, overrides)
    if args.beam_args:
        if "beam_args" not in type(config.prepare_data).model_fields:
            raise config_lib.ConfigError(
                f"the {config.domain} domain's prepare_data takes no Beam options after --")
        config.prepare_data.beam_args = config.prepare_data.beam_args + list(args.beam_args)
    return config


def _with_algorithms(config: config_lib.Config,
                     algorithms: list[str] | None) -> config_lib.Config:
    """``config`` with ``--algorithm``'s list, if given, as tune.algorithms."""
    if not algorithms:
        return config
    known = rl_algorithms.names()
    unknown = sorted(set(algorithms) - set(known))
    if unknown:
        raise config_lib.ConfigError(f"--algorithm: unknown {unknown}; choose from {list(known)}")
    # Validated as the config's list is (each algorithm's allowed starts).
    return config_lib.config_from_dict(config.model_dump(mode="json"),
                                       [("tune.algorithms", list(algorithms))])


def main(argv: list[str] | None = None) -> int:
    # Called as the command (argv None), the process is ours: its file descriptor 2 (native
    # code, Beam's worker processes) is filtered too; a caller in the same process keeps its own.
    own_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    args.beam_args = beam_args
    if args.verbose:
        # Importing seqtutor quiets TensorFlow's C++ logging by default; -v shows all of it.
        # Read once, when TensorFlow is first imported (nothing above imports it); the
        # variable reaches Beam's worker processes too.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    with console.session(args.verbose, filter_native_output=own_process):
        try:
            return _command(args)
        except KeyboardInterrupt:
            console.error("seqtutor: interrupted (a stage left unfinished is redone or "
                          "resumed by the next run)")
            return 130
        except BrokenPipeError:  # the reader went away: `seqtutor status ... | head`
            # Python's recipe: no second error when the interpreter flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1


def _command(args) -> int:
    """Run the parsed command; the exit status."""
    if args.beam_args and args.command not in ("run", "prepare-data", "status"):
        console.error(f"seqtutor: error: `{args.command}` takes no Beam options after --")
        return 2
    try:
        config = _load(args)
        workdir = getattr(args, "workdir", None) or runner.default_workdir(config)
        if args.command == "run":
            results = runner.run_pipeline(config, workdir, only=args.only,
                                          from_stage=args.from_stage, force=args.force,
                                          max_points=args.max_points)
        elif args.command == "compile":
            from seqtutor.pipeline import kfp_pipeline
            try:
                kfp_pipeline.compile_pipeline(
                    config, str(args.output), image=args.image, gpu_image=args.gpu_image,
                    parallelism=args.parallelism,
                    tune_resources=kfp_pipeline.Resources(
                        args.accelerator_type, args.accelerator_count, args.tune_cpu,
                        args.tune_memory),
                    pretrain_resources=kfp_pipeline.Resources(
                        args.pretrain_accelerator_type or args.accelerator_type,
                        args.pretrain_accelerator_count))
            except kfp_pipeline.PipelineSpecError as error:
                console.error(f"seqtutor: error: {error}")
                return 2
            print(f"wrote {args.output}")
            return 0
        elif args.command == "generate":
            from seqtutor.components import generate
            paths = generate.generate(config, workdir, args.model, args.num, args.out)
            print(f"wrote {len(paths)} files to {args.out}")
            return 0
        elif args.command == "tune":
            config = _with_algorithms(config, args.algorithm)
            runner.check_sweep(config, args.max_points)
            results = runner.run_variants(config, "tune", workdir, force=True,
                                          keep_finished=args.keep_finished)
        elif args.command == "status":
            config = _with_algorithms(config, args.algorithm)
            print(status_table(runner.status(config, workdir, args.max_points)))
            return 0
        elif args.command == "evaluate":
            results = [runner.run_stage(config, "evaluate", workdir, force=True,
                                        extend=not args.rescore)]
        else:
            results = [runner.run_stage(config, args.command.replace("-", "_"), workdir,
                                        force=True)]
    except config_lib.ConfigError as error:
        console.error(f"seqtutor: error: {error}")
        return 2
    except (artifacts.MissingArtifactError, artifacts.ArtifactBusyError, runner.StageError,
            OSError, ValueError) as error:  # OSError: a file it cannot read or write
        console.error(f"seqtutor: error: {error}")
        return 1
    # Each stage's start and end were its lines (the runner's log); the report is the result.
    for result in results:
        if result.name == "evaluate":
            print(f"report: {result.path / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
