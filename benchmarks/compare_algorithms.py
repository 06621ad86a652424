"""Benchmark: every algorithm of the table on one prior and one reward, over a grid of c and
seeds: the frontier of task reward against closeness to the prior, a table at matched closeness,
and what each algorithm costs in environment steps and wall time to reach its point.

The config's sweep runs as ``seqtutor run`` runs it: the data and the prior once, one tune
artifact per (algorithm, point), then evaluate (metrics, report, frontier.csv). Artifacts
already in WORKDIR are reused, so a run cut short continues where it stopped; a finished
WORKDIR is only read. ``--read-only`` sums up a WORKDIR made by another code version (whose
artifacts this one would otherwise make again) without running anything.

    python -m benchmarks.compare_algorithms [--config melody_sweep] [--workdir W]
        [--c 0.1 0.25 0.5 1 2] [--seeds 0 1 2] [--algorithms q psi ...]
        [--match-on mean_log_prior|kl_per_token] [--target X] [--read-only] [--images DIR]
        [--no-reward-terms]

``--c`` and ``--seeds`` replace the config's sweep; ``--algorithms`` (default: the config's
``tune.algorithms``) sets both the tuned and the evaluated models, and with ``--read-only``
which of the evaluated models are summed up (an off-scale one such as RL-only can be left out
of the figures). The matched table holds ``--match-on`` fixed: the mean log p(a|s) per token
under the prior (the default) or the KL(pi || p) per token, at ``--target`` (by default the
median over the tuned columns).

Prints (and with --output writes) a JSON object: config, workdir, match_on, target; matched
(per algorithm: its column, the seeds, the mean and sd over seeds of every statistic, and the
mean env_steps, train_steps and tune seconds of its runs); paper_target (where the domain has a
paper table: the paper's best tuned value of each of its rows (the second best for
SECOND_BEST_ROWS), and per tuned column the rows it misses, as mean over seeds, and whether its
mean log p is above every RL-only column's); frontier (the rows of frontier.csv); runs (per
tune artifact: env_steps, train_steps, seconds); reward_terms (melody: the mean reward per
composition of each term of r_T, per model and per seed group; null with --no-reward-terms,
which skips rerunning the rule detector over every model's samples, most of the time of a
--read-only pass over a large sweep); markdown (the matched table as Markdown, for
docs/figures.md); objective_markdown (the KL-regularised reward E[r_T] - c KL(pi || p) by
setting and algorithm, mean ± sd over seeds: which algorithm gets nearest the common target at
each c); images (with --images DIR: the report's frontier and statistics-against-c figures
written as DIR/frontier.png and DIR/statistics_against_c.png, for docs/figures.md). Smoke
(tests): ``--smoke`` (the melody smoke config, Q and DAP at c 10 with two seeds, 2,048 steps
each).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
from pathlib import Path

from benchmarks import common
from seqtutor import layout, plugins, sweep
from seqtutor.components import report
from seqtutor.pipeline import runner
from seqtutor.rl import algorithms
from seqtutor.statistic import FRACTION, ZERO, ranking_key

SMOKE = {"config": common.SMOKE_CONFIGS["melody"], "c": [10.0], "seeds": [0, 1],
         "algorithms": ["q", "dap"]}
SMOKE_OVERRIDES = [*common.SMOKE_NETWORK, ("pretrain.max_steps", 50),
                   ("tune.num_steps", 2048), ("tune.eval_every", 2048),
                   ("tune.checkpoint_every", 2048), ("tune.eval_episodes", 64),
                   ("tune.batch_episodes", 8), ("evaluate.num_samples", 200)]
# What each tune run cost, from its tune.json.
COST_FIELDS = ("env_steps", "train_steps", "seconds")
# Paper rows left out of the target: melody Table 1's autocorrelations at lags 2 and 3 (the
# paper's text, and this project's target, judge the lag-1 autocorrelation alone).
TARGET_ROWS_LEFT_OUT = ("autocorr_lag2", "autocorr_lag3")
# Two melody rows are held to the second-best tuned value, at the precision the paper prints:
# repeated notes to Psi's 0.02% (Q's 0.0% would demand not one repeat in 3.2 million sampled
# steps) and the lag-1 autocorrelation to Q's |-0.11| (Psi's -0.10 is within its two decimals).
SECOND_BEST_ROWS = ("repeated_notes", "autocorr_lag1")
# The algorithm without the prior, whose closeness a tuned column must beat.
NO_PRIOR = "rl_only"


def sweep_overrides(args) -> list:
    overrides = []
    if args.c is not None or args.seeds is not None:
        grid = {}
        if args.c is not None:
            grid["tune.c"] = list(args.c)
        if args.seeds is not None:
            grid["seed"] = list(args.seeds)
        overrides.append(("sweep", grid))
    if args.algorithms is not None:
        overrides += [("tune.algorithms", list(args.algorithms)),
                      ("evaluate.models", ["mle", *args.algorithms])]
    return overrides


def only_algorithms(metrics: dict, names, details_key: str) -> dict:
    """``metrics`` restricted to the data, the MLE and the models of the algorithms ``names``:
    their statistics, the domain's details (``details_key``), seed groups and missing models."""
    def kept(model: str) -> bool:
        return (model in (report.DATA_COLUMN, report.MLE_MODEL)
                or sweep.algorithm_of(model) in names)

    selected = dict(metrics)
    for key in ("models", "seed_groups", details_key):
        if metrics.get(key):
            selected[key] = {name: value for name, value in metrics[key].items() if kept(name)}
    if metrics.get("missing_models"):
        selected["missing_models"] = [name for name in metrics["missing_models"] if kept(name)]
    return selected


def tune_runs(workdir, metrics: dict) -> dict[str, dict]:
    """env_steps, train_steps and seconds of every evaluated tune artifact; seconds is None
    for a run that resumed or continued another (its time covers only its last part)."""
    runs = {}
    for model in metrics["models"]:
        if model in ("mle", "data"):
            continue
        summary = json.loads((layout.tuned_dir(workdir / "tune", model)
                              / layout.TUNE_SUMMARY_FILE).read_text())
        runs[model] = {field: summary.get(field) for field in COST_FIELDS}
        if summary.get("timed_from_step", 0) != 0:
            runs[model]["seconds"] = None
    return runs


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def matched_table(metrics: dict, runs: dict, target: float | None,
                  key: str = "mean_log_prior") -> tuple[float, dict] | None:
    """Per algorithm, its column nearest the common closeness: statistics over seeds, costs
    (seconds: the mean over the runs timed from their start). None: no column has ``key``."""
    match = report.matched_columns(metrics, target, key)
    if match is None:
        return None
    target, chosen = match
    columns, spread = report.table_columns(metrics)
    groups = metrics.get("seed_groups") or {}
    matched = {}
    for algorithm, column in chosen.items():
        members = groups[column]["models"] if column in groups else [column]
        matched[algorithm] = {
            "column": column, "seeds": len(members),
            "mean": columns[column], "sd": spread.get(column, {}),
            **{field: _mean([runs[m][field] for m in members]) for field in COST_FIELDS}}
    return target, matched


def paper_best(domain, info) -> dict[str, dict]:
    """The paper's best tuned value of each row of the domain's paper table (its first column
    is the MLE's), by the row's direction: the most for higher, the least for lower, the
    smallest magnitude for zero; the second best for SECOND_BEST_ROWS."""
    best = {}
    for key, values in domain.paper_table.get("rows", {}).items():
        better = info[key].better if key in info else None
        tuned = [value for value in values[1:] if value is not None]
        if key in TARGET_ROWS_LEFT_OUT or not tuned or better is None:
            continue
        ranked = sorted(tuned, key=lambda value: ranking_key(value, better))
        value = ranked[1 if key in SECOND_BEST_ROWS and len(ranked) > 1 else 0]
        best[key] = {"better": better, "value": abs(value) if better == ZERO else value}
    return best


def melody_reward_terms(evaluated, metrics: dict) -> dict:
    """Melody: the mean reward per composition of each term of r_T (under the evaluation's
    reward weights), from the evaluation's samples: per model, and per seed group its mean
    and sd over seeds. Which rules a model is paid for, and which it gives up."""
    import numpy as np

    from seqtutor.components import evaluate
    from seqtutor.domains.melody import rules

    binding, weights = metrics.get("name_binding", "data"), metrics.get("reward_weights")
    per_model = {}
    for name in metrics["models"]:
        path = evaluated / layout.SAMPLES_DIR / f"{name}.npz"
        if path.is_file():
            with np.load(path) as samples:
                terms = rules.reward_terms(rules.detect(samples["tokens"], binding), weights)
            per_model[name] = {term: float(values.sum(axis=1).mean())
                               for term, values in terms.items()}
    groups = {group: row["models"] for group, row in (metrics.get("seed_groups") or {}).items()}
    return {"models": per_model, "seed_groups": evaluate.over_seeds(per_model, groups)}


def meets(value: float, better: str, bound: float) -> bool:
    return ranking_key(value, better) <= ranking_key(bound, better)


def paper_target(metrics: dict, best: dict, evaluated: dict | None = None) -> dict:
    """Per tuned column (a group over seeds: its mean), the paper rows it misses and whether
    its mean log p(a|s) is above every RL-only column's: those of ``evaluated``, the whole
    evaluation when ``metrics`` holds only some of its algorithms (default: ``metrics``)."""
    columns, _ = report.table_columns(metrics)
    no_prior = [stats["mean_log_prior"]
                for name, stats in report.table_columns(evaluated or metrics)[0].items()
                if sweep.algorithm_of(name) == NO_PRIOR]
    rows = {}
    for name in report.model_order(columns):
        if name in (report.DATA_COLUMN, report.MLE_MODEL) or sweep.algorithm_of(name) == NO_PRIOR:
            continue
        stats = columns[name]
        missed = {key: stats[key] for key, row in best.items()
                  if key in stats and not meets(stats[key], row["better"], row["value"])}
        rows[name] = {"missed": missed, "log_prior_above_rl_only":
                      bool(no_prior) and stats["mean_log_prior"] > max(no_prior)}
    return {"best": best, "columns": rows,
            "meeting_all": [name for name, row in rows.items()
                            if not row["missed"] and row["log_prior_above_rl_only"]]}


def _cell(mean, sd, percent: bool) -> str:
    if mean is None:
        return ""
    scale, unit, digits = (100.0, "%", 1) if percent else (1.0, "", 3)
    text = f"{mean * scale:.{digits}f}{unit}"
    if sd is not None and not math.isnan(sd):
        text += f" ± {sd * scale:.{digits}f}"
    return text


def markdown(matched: dict, keys, info) -> str:
    """The matched table: one row per statistic and cost, one column per algorithm."""
    names = list(matched)
    lines = ["| | " + " | ".join(f"{a} ({matched[a]['column']}, {matched[a]['seeds']} seeds)"
                                  for a in names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for key in keys:
        percent = key in info and info[key].unit == FRACTION
        label = info[key].label if key in info else key
        lines.append(f"| {label} | " + " | ".join(
            _cell(matched[a]["mean"].get(key), matched[a]["sd"].get(key), percent)
            for a in names) + " |")
    for field in COST_FIELDS:
        lines.append(f"| {field.replace('_', ' ')} | " + " | ".join(
            "" if matched[a][field] is None else f"{matched[a][field]:,.0f}" for a in names)
            + " |")
    return "\n".join(lines)


def objective_markdown(metrics: dict) -> str:
    """The KL-regularised reward by setting and algorithm (report.objective_grid), mean ± sd
    over seeds, the best of a row in bold."""
    names, rows = report.objective_grid(metrics)
    lines = ["| setting | mle | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for row in rows:
        means = {a: mean for a, (mean, _) in row["values"].items()}
        top = max(means.values())
        cells = []
        for algorithm in names:
            mean, sd = row["values"].get(algorithm, (None, None))
            text = "" if mean is None else f"{mean:.1f}" + ("" if sd is None else f" ± {sd:.1f}")
            cells.append(f"**{text}**" if mean == top and len(means) > 1 else text)
        mle = "" if row["mle"] is None else f"{row['mle']:.1f}"
        lines.append(f"| {row['setting']} | {mle} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_images(directory, metrics: dict, domain) -> dict[str, str]:
    """The report's frontier and statistics-against-c figures as PNG files in ``directory``
    (the report embeds them as data URIs): {name: path} of those the sweep can draw."""
    keys = domain.statistic_keys  # the report's own rows
    figures = {
        "frontier": report.frontier_png(report.frontier_rows(metrics)),
        "statistics_against_c": report.statistics_against_c_png(
            metrics, keys, report.statistic_info(domain, keys))}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, uri in figures.items():
        if uri is None:  # nothing to draw: no sweep over c
            continue
        path = directory / f"{name}.png"
        path.write_bytes(base64.b64decode(uri.split(",", 1)[1]))
        written[name] = str(path)
    return written


def main(argv: list[str] | None = None) -> dict:
    parser = common.parser(__doc__, "melody_sweep")
    parser.add_argument("--c", type=float, nargs="+", default=None,
                        help="values of tune.c (default: the config's sweep)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds (default: the config's sweep)")
    parser.add_argument("--algorithms", nargs="+", default=None,
                        choices=list(algorithms.names()),
                        help="tuned and evaluated (default: the config's tune.algorithms)")
    parser.add_argument("--read-only", action="store_true",
                        help="only sum up WORKDIR's finished evaluate artifact (made by another "
                             "code version, whose artifacts this one would remake)")
    parser.add_argument("--match-on", default="mean_log_prior", choices=list(report.MATCH_KEYS),
                        help="the measure of closeness to the prior the matched table holds "
                             "fixed (default: %(default)s)")
    parser.add_argument("--target", type=float, default=None,
                        help="its common value, nats per token (default: the median over the "
                             "tuned columns)")
    parser.add_argument("--images", default=None, metavar="DIR",
                        help="also write the frontier and statistics-against-c figures as PNG "
                             "files in DIR")
    parser.add_argument("--reward-terms", action=argparse.BooleanOptionalAction, default=True,
                        help="melody: the mean reward of each term of r_T per model, from the "
                             "samples (default: on)")
    args = common.parse_args(parser, argv, SMOKE)
    with common.setup(args, sweep_overrides(args), smoke_overrides=SMOKE_OVERRIDES) as (
            config, workdir):
        evaluated = layout.stage_dir(workdir, "evaluate")
        if not args.read_only:
            runner.run_pipeline(config, workdir)
        elif not layout.is_complete(evaluated):
            parser.error(f"--read-only: {evaluated} is not a finished evaluate artifact")
        everything = json.loads((evaluated / layout.METRICS_FILE).read_text())
        domain = plugins.domain_class(config.domain)  # its declarations, no scorer started
        metrics = (everything if args.algorithms is None
                   else only_algorithms(everything, args.algorithms, domain.details_key))
        runs = tune_runs(workdir, metrics)
        if not runs:
            parser.error(f"{evaluated} holds no tuned model: nothing to compare")
        match = matched_table(metrics, runs, args.target, args.match_on)
        if match is None:
            parser.error(f"{evaluated}: no tuned model has {args.match_on} to match on")
        target, matched = match
        keys = [*domain.statistic_keys, report.KL_KEY]
        info = report.statistic_info(domain, keys)
        best = paper_best(domain, info)
        images = write_images(args.images, metrics, domain) if args.images else None
        return common.report("compare_algorithms", {
            "config": args.config, "workdir": str(workdir), "match_on": args.match_on,
            "target": target, "matched": matched,
            "paper_target": paper_target(metrics, best, everything) if best else None,
            "frontier": report.frontier_rows(metrics), "runs": runs,
            "reward_terms": (melody_reward_terms(evaluated, metrics)
                             if config.domain == "melody" and args.reward_terms else None),
            "markdown": markdown(matched, keys, info),
            "objective_markdown": objective_markdown(metrics), "images": images}, args)


if __name__ == "__main__":
    main()
