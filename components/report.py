"""The evaluation report: one self-contained HTML file (every picture, MIDI file and sound is
embedded as a data URI, so it opens anywhere, offline, and can be mailed around).

Sections: the statistics of every model beside the data row and the paper's table; the domain's
details (melody: intervals per composition; molecule: outcomes); the tuning curves of every
algorithm (the paper's Figure 2); the frontier of task reward against closeness to the prior;
with a sweep over c, each statistic against c, the KL-regularised reward by c and tables at
matched closeness to the prior (on mean log p and on KL per token); samples of each model as the domain draws them (melody: piano
rolls with MIDI and WAV; molecule: a grid of RDKit drawings).

The statistics table reads like the paper's: fractions as percentages, other values as plain
decimals with the same digits across a row, the best model of each row in bold (by the row's
direction: higher, lower, or closer to zero is better; the data column and the paper's columns do
not compete), and the paper's columns set apart under their own header. How a statistic is shown
and ranked comes from the domain's ``statistic_info`` (``seqtutor.statistic.Statistic`` per
key); a key the domain does not declare is a plain, unranked value.
"""

from __future__ import annotations

import csv
import html
import logging
import math
from pathlib import Path

import numpy as np

from seqtutor import artifacts, layout, sweep
from seqtutor.config import MLE_MODEL
from seqtutor.figures import figure, figure_uri
from seqtutor.rl import algorithms
from seqtutor.statistic import (COUNT, FRACTION, HIGHER, LOWER, VALUE, ZERO, Statistic,
                                ranking_key, undeclared)

log = logging.getLogger(__name__)

DATA_COLUMN = "data"  # the eval split scored like a model (evaluate.DATA_ROW): a reference
PAPER = "Jaques et al. 2017"

ARROWS = {HIGHER: ("↑", "higher is better"), LOWER: ("↓", "lower is better"),
          ZERO: ("→0", "closer to zero is better")}


def statistic_info(domain, keys) -> dict[str, Statistic]:
    """Each key's :class:`Statistic`: the domain's declaration (``statistic_info``), else a
    plain unranked value (:func:`seqtutor.statistic.undeclared`)."""
    declared = getattr(domain, "statistic_info", None) or {}
    return {key: declared.get(key) or undeclared(key) for key in keys}


def _number(value) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, infinite, not a number)."""
    if value is None or isinstance(value, (bool, str)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def row_decimals(values) -> int:
    """Decimals for the plain values of one row, by its largest magnitude: 1 from 100 up, 2
    from 1, 3 below 1, more for a row of tiny values (two significant digits)."""
    largest = max((abs(v) for v in map(_number, values) if v is not None), default=0.0)
    if largest >= 100:
        return 1
    if largest >= 1:
        return 2
    if largest >= 0.01 or largest == 0:
        return 3
    return min(8, 1 - math.floor(math.log10(largest)))


def _percent_digits(percent: float) -> str:
    """A non-negative percentage as in the paper's Table 1: one decimal (0.0, 12.3, 100.0); a
    tiny non-zero one with one significant digit (0.007, 0.04), below 0.001 '<0.001'."""
    if percent == 0 or percent >= 0.1:
        return f"{percent:,.1f}"
    return "<0.001" if percent < 0.00095 else f"{percent:.1g}"


def _shown(text: str) -> float:
    """The number a formatted cell shows (ties are what the reader sees as equal)."""
    digits = text.replace(",", "").replace("%", "").replace(" pp", "").replace("+", "")
    return 0.0005 if digits == "<0.001" else float(digits)


def format_value(value, unit: str = VALUE, decimals: int = 3) -> str:
    """One cell's text: a fraction as a percentage ('12.3%'), a count as an integer ('1,204'),
    anything else as a plain decimal with ``decimals`` digits; '' for a missing value."""
    number = _number(value)
    if number is None:
        return ""
    if number.is_integer() and (unit == COUNT or (
            unit == VALUE and isinstance(value, (int, np.integer)))):
        return f"{int(number):,}"
    if unit == FRACTION:
        digits = _percent_digits(abs(number) * 100)
        return ("-" if number < 0 and digits not in ("0.0", "<0.001") else "") + digits + "%"
    if number != 0 and (abs(number) >= 1e9 or abs(number) < 1e-8):
        return f"{number:.3g}"  # only extreme magnitudes in scientific notation
    text = f"{number:,.{decimals}f}"
    return text.lstrip("-") if _shown(text) == 0 else text


def format_difference(value, unit: str = VALUE, decimals: int = 3) -> str:
    """A signed difference: of fractions in percentage points ('+1.2 pp'), else a decimal."""
    number = _number(value)
    if number is None:
        return ""
    if unit == FRACTION:
        digits = _percent_digits(abs(number) * 100)
        sign = "" if digits == "0.0" else "+" if number > 0 else "-"
        return f"{sign}{digits} pp"
    text = format_value(abs(number), unit, decimals)
    return text if _shown(text) == 0 else ("+" if number > 0 else "-") + text


def best_of(shown: dict[str, float | None], better: str | None) -> set[str]:
    """The names whose shown value is best in direction ``better``; every tied one; none when
    the row is not ranked, fewer than two values compete, or all of them tie."""
    values = {name: v for name, v in shown.items() if v is not None}
    if better is None or len(values) < 2:
        return set()
    top = min(ranking_key(v, better) for v in values.values())
    winners = {name for name, v in values.items() if ranking_key(v, better) == top}
    return winners if len(winners) < len(values) else set()


def curves_png(curves: dict[str, list[dict]]) -> str | None:
    """Mean r_T and mean log p(a|s) against environment steps, one line per algorithm."""
    if not curves:
        return None
    fig, (reward_axis, prior_axis) = figure(1, 2, figsize=(11, 3.8))
    for algorithm, rows in curves.items():
        steps = [r["step"] for r in rows]
        reward_axis.plot(steps, [r["mean_task_reward"] for r in rows], label=algorithm)
        prior_axis.plot(steps, [r["mean_log_prior"] for r in rows], label=algorithm)
    reward_axis.set(title="mean r_T per episode", xlabel="environment steps")
    prior_axis.set(title="mean log p(a|s) under the Reward RNN", xlabel="environment steps")
    reward_axis.legend()
    return figure_uri(fig)


def _td(text: str, classes: list[str], missing: str = "") -> str:
    if not text and missing:
        text, classes = missing, [*classes, "na"]
    cls = f" class='{' '.join(classes)}'" if classes else ""
    return f"<td{cls}>{text}</td>"


def _row_label(key: str, statistic: Statistic) -> str:
    arrow = ARROWS.get(statistic.better)
    mark = (f"<span class='dir' title='{arrow[1]}'>{arrow[0]}</span>" if arrow else "")
    return (f"<th class='stat' title='{html.escape(key)}'>{html.escape(statistic.label)}"
            f"{mark}</th>")


def statistics_table(models: dict[str, dict], keys, paper: dict,
                     info: dict[str, Statistic] | None = None,
                     spread: dict[str, dict] | None = None) -> str:
    """Models side by side, the MLE row's distance to the data, and the paper's table
    (``paper``: {"columns": names, "rows": {key: values}}, optionally "source").

    ``info``: each key's :class:`Statistic` (default: :func:`statistic_info` without a domain).
    ``spread``: a standard deviation over seeds per column and key, shown as ``mean ± sd``.
    The best model of each ranked row is in bold (class ``best``); the data column, the
    difference and the paper's columns (class ``paper``) do not compete.
    """
    info = info if info is not None else statistic_info(None, keys)
    names = model_order(models)
    contenders = [n for n in names if n != DATA_COLUMN]
    compare = DATA_COLUMN in models and MLE_MODEL in models
    columns = tuple(paper.get("columns", ()))
    source = html.escape(str(paper.get("source", PAPER)))
    group = (f"<tr><th rowspan='2' class='stat'>statistic</th>"
             f"<th colspan='{len(names) + compare}' class='group run'>this run</th>"
             + (f"<th colspan='{len(columns)}' class='group paper first'>paper ({source})</th>"
                if columns else "") + "</tr>")
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    head += f"<th class='diff'>{MLE_MODEL} − {DATA_COLUMN}</th>" if compare else ""
    head += "".join(f"<th class='paper{' first' if i == 0 else ''}' "
                    f"title='paper {html.escape(n)} ({source})'>{html.escape(n)}</th>"
                    for i, n in enumerate(columns))
    rows = []
    for key in keys:
        statistic = info.get(key) or undeclared(key)
        values = {n: models[n].get(key) for n in names}
        paper_values = list(paper.get("rows", {}).get(key, ()))
        paper_values += [None] * (len(columns) - len(paper_values))
        decimals = row_decimals([*values.values(), *paper_values])
        texts = {n: format_value(v, statistic.unit, decimals) for n, v in values.items()}
        best = best_of({n: _shown(texts[n]) if texts[n] else None for n in contenders},
                       statistic.better)
        cells = []
        for n in names:
            text = f"<b>{texts[n]}</b>" if n in best else texts[n]
            sd = (spread or {}).get(n, {}).get(key)
            if texts[n] and sd is not None:
                text += f" <span class='sd'>± {format_value(sd, statistic.unit, decimals)}</span>"
            classes = (["ref"] if n == DATA_COLUMN else []) + (["best"] if n in best else [])
            cells.append(_td(text, classes, missing="–"))
        if compare:
            mle, data = _number(values[MLE_MODEL]), _number(values[DATA_COLUMN])
            difference = None if mle is None or data is None else mle - data
            cells.append(_td(format_difference(difference, statistic.unit, decimals), ["diff"],
                             missing="–"))
        cells += [_td(format_value(v, statistic.unit, decimals),
                      ["paper", "first"] if i == 0 else ["paper"])
                  for i, v in enumerate(paper_values)]
        rows.append(f"<tr>{_row_label(key, statistic)}{''.join(cells)}</tr>")
    return (f"<table class='statistics'><thead>{group}<tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def table_columns(metrics: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """The statistics table's columns and their spread: with seeds swept, each group of models
    that differ only by seed is one column, its mean (and standard deviation) over seeds."""
    groups = metrics.get("seed_groups") or {}
    grouped = {member for group in groups.values() for member in group["models"]}
    columns = {name: stats for name, stats in metrics["models"].items() if name not in grouped}
    columns.update({name: group["mean"] for name, group in groups.items()})
    return columns, {name: group["sd"] for name, group in groups.items()}


KL_KEY = "kl_per_token"  # mean KL(pi(.|s) || p(.|s)) over a model's sampled states (evaluate)
SEQUENCE_KL_KEY = "kl_per_sequence"  # KL(pi || p) between sequence distributions (evaluate)
C_KEY = "c"  # the c a tuned model was tuned with
OBJECTIVE_KEY = "kl_regularised_reward"  # E[r_T] - c KL(pi || p) of a tuned model (evaluate)
PRIOR_DISTANCE_KEYS = (KL_KEY, SEQUENCE_KL_KEY)  # every model's row but the data's
TUNED_KEYS = (C_KEY, OBJECTIVE_KEY)  # a tuned model's row also
FRONTIER_FIELDS = ("model", "algorithm", "seeds", "mean_task_reward", "sd_task_reward",
                   "mean_log_prior", "sd_log_prior", KL_KEY, f"sd_{KL_KEY}",
                   SEQUENCE_KL_KEY, f"sd_{SEQUENCE_KL_KEY}", C_KEY, OBJECTIVE_KEY,
                   f"sd_{OBJECTIVE_KEY}")


def frontier_rows(metrics: dict) -> list[dict]:
    """Mean task reward and mean log p(a|s) under the prior of every column of the statistics
    table (a group over seeds with its standard deviations), the data and the MLE included."""
    columns, spread = table_columns(metrics)
    groups = metrics.get("seed_groups") or {}
    rows = []
    for name in model_order(columns):
        stats, sd = columns[name], spread.get(name, {})
        rows.append({
            "model": name,
            "algorithm": name if name in (DATA_COLUMN, MLE_MODEL) else sweep.algorithm_of(name),
            "seeds": len(groups[name]["models"]) if name in groups else 1,
            "mean_task_reward": stats.get("mean_task_reward"),
            "sd_task_reward": sd.get("mean_task_reward"),
            "mean_log_prior": stats.get("mean_log_prior"),
            "sd_log_prior": sd.get("mean_log_prior"),
            **{field: stats.get(field) for field in (KL_KEY, SEQUENCE_KL_KEY, C_KEY,
                                                      OBJECTIVE_KEY)},
            **{f"sd_{field}": sd.get(field) for field in (KL_KEY, SEQUENCE_KL_KEY,
                                                          OBJECTIVE_KEY)}})
    return rows


def objective_grid(metrics: dict) -> tuple[list[str], list[dict]]:
    """The KL-regularised reward E[r_T] - c KL(pi || p) of every tuned column by setting (the
    sweep point without its seed, or the config's c) and algorithm: (the algorithms, one row
    per setting in the order of c: {"setting", "c", "mle", "values": {algorithm: (mean, sd)}}).

    Every algorithm at one c aims at the same pi* (for undiscounted episodes), and the value is
    c (log Z - KL(pi || pi*)): along a row, larger is nearer pi*. "mle" is the prior's value at
    the row's c (its KL is 0 at temperature 1), the bar that tuning must clear.
    """
    columns, spread = table_columns(metrics)
    settings: dict[str, dict[str, str]] = {}  # setting -> {algorithm: column}
    for name in model_order(columns):
        if name not in (DATA_COLUMN, MLE_MODEL) and _number(
                columns[name].get(OBJECTIVE_KEY)) is not None:
            settings.setdefault(sweep.point_of(name), {})[sweep.algorithm_of(name)] = name
    names = list(dict.fromkeys(a for chosen in settings.values() for a in chosen))
    mle = columns.get(MLE_MODEL, {})
    rows = []
    for setting, chosen in settings.items():
        c = columns[next(iter(chosen.values()))][C_KEY]
        rows.append({
            "setting": setting or f"c={c:g}", "c": c,
            "mle": (None if _number(mle.get("mean_task_reward")) is None
                    else mle["mean_task_reward"] - c * (mle.get(SEQUENCE_KL_KEY) or 0.0)),
            "values": {a: (columns[column][OBJECTIVE_KEY],
                           spread.get(column, {}).get(OBJECTIVE_KEY))
                       for a, column in chosen.items()}})
    rows.sort(key=lambda row: row["c"])  # stable: the settings of one c keep their order
    return names, rows


def objective_table(metrics: dict) -> str | None:
    """:func:`objective_grid` as HTML, mean ± sd over seeds, the best of a row in bold; None
    without a tuned model that has the value (an older metrics.json)."""
    names, rows = objective_grid(metrics)
    if not rows:
        return None
    lines = []
    for row in rows:
        means = {a: mean for a, (mean, _) in row["values"].items()}
        decimals = row_decimals([row["mle"], *means.values()])
        texts = {a: format_value(v, VALUE, decimals) for a, v in means.items()}
        best = best_of({a: _shown(text) for a, text in texts.items()}, HIGHER)
        cells = [_td(format_value(row["mle"], VALUE, decimals), ["ref"], missing="–")]
        for algorithm in names:
            text = texts.get(algorithm, "")
            sd = row["values"].get(algorithm, (None, None))[1]
            if text and sd is not None:
                text += f" <span class='sd'>± {format_value(sd, VALUE, decimals)}</span>"
            shown = f"<b>{text}</b>" if algorithm in best else text
            cells.append(_td(shown, ["best"] if algorithm in best else [], missing="–"))
        lines.append(f"<tr><th class='stat'>{html.escape(row['setting'])}</th>"
                     f"{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(n)}</th>" for n in (MLE_MODEL, *names))
    return (f"<table class='objective'><thead><tr><th class='stat'>setting</th>{head}</tr>"
            f"</thead><tbody>{''.join(lines)}</tbody></table>")


# What "closeness to the prior" a matched table holds fixed: the mean log p(a|s) of the samples
# under the prior (the sweep issue's measure) or the KL(pi || p) per token. They disagree when a
# policy moves onto the prior's likeliest sequences: its log p rises while its KL grows.
MATCH_KEYS = {"mean_log_prior": "mean log p(a|s) under the prior", KL_KEY: "KL(π ‖ p)"}


def matched_columns(metrics: dict, target: float | None = None, key: str = "mean_log_prior"
                    ) -> tuple[float, dict[str, str]] | None:
    """A comparison at matched closeness to the prior: for each algorithm, its tuned column (a
    model, or a group over seeds) whose ``key`` (one of MATCH_KEYS) is nearest to ``target``
    (default: the median over every tuned column; the earlier column of a tie). (target,
    {algorithm: column}); None without a tuned column that has ``key``."""
    if key not in MATCH_KEYS:
        raise ValueError(f"cannot match on {key!r}: one of {', '.join(MATCH_KEYS)}")
    columns, _ = table_columns(metrics)
    tuned = {name: stats[key] for name, stats in columns.items()
             if name not in (DATA_COLUMN, MLE_MODEL) and stats.get(key) is not None}
    if not tuned:
        return None
    if target is None:
        target = float(np.median(list(tuned.values())))
    chosen: dict[str, str] = {}
    for name in model_order(tuned):
        algorithm = sweep.algorithm_of(name)
        best = chosen.get(algorithm)
        if best is None or abs(tuned[name] - target) < abs(tuned[best] - target):
            chosen[algorithm] = name
    return target, chosen


def write_frontier_csv(path: Path, rows: list[dict]) -> None:
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FRONTIER_FIELDS)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def frontier_lines(rows: list[dict], x: str) -> dict[str, list[dict]]:
    """The tuned rows of :func:`frontier_rows` that have a task reward and a value of ``x``,
    a line (:func:`line_label`) for each algorithm and setting of the sweep's keys other than
    c, in the order of ``x``: a sweep over c and gamma draws a line per gamma."""
    lines: dict[str, list[dict]] = {}
    for row in rows:
        if (row["algorithm"] not in (DATA_COLUMN, MLE_MODEL)
                and None not in (row["mean_task_reward"], row[x])):
            lines.setdefault(line_label(row["model"]), []).append(row)
    return {label: sorted(line, key=lambda r: r[x]) for label, line in lines.items()}


def frontier_png(rows: list[dict]) -> str | None:
    """Task reward against closeness to the prior: against the mean log p(a|s) of the samples
    (left) and the policy's KL from the prior per step (right), a line per algorithm (and
    setting of the sweep's other keys) through its models (or groups over seeds, with error
    bars of one standard deviation); the MLE and the data are reference points on the left."""
    if not any(frontier_lines(rows, x) for x in ("mean_log_prior", KL_KEY)):
        return None
    fig, (prior_axis, kl_axis) = figure(1, 2, figsize=(12, 4.5), sharey=True)
    for x, x_sd, axis in (("mean_log_prior", "sd_log_prior", prior_axis),
                          (KL_KEY, f"sd_{KL_KEY}", kl_axis)):
        for label, line in frontier_lines(rows, x).items():
            axis.errorbar([r[x] for r in line], [r["mean_task_reward"] for r in line],
                          xerr=[r[x_sd] or 0.0 for r in line],
                          yerr=[r["sd_task_reward"] or 0.0 for r in line],
                          marker="o", capsize=3, label=label)
    for row in rows:
        marker = {MLE_MODEL: "s", DATA_COLUMN: "*"}.get(row["model"])
        if marker and None not in (row["mean_log_prior"], row["mean_task_reward"]):
            prior_axis.scatter([row["mean_log_prior"]], [row["mean_task_reward"]], s=90,
                               marker=marker, color="black", zorder=3, label=row["model"])
    prior_axis.set(xlabel="mean log p(a|s) under the prior (closer to the data →)",
                   ylabel="mean r_T per episode")
    kl_axis.set(xlabel="KL(π ‖ p) per step, nats (← closer to the prior)")
    prior_axis.legend(fontsize="small")
    fig.suptitle("task reward against closeness to the prior")
    return figure_uri(fig)


def line_label(column: str) -> str:
    """The line through c that a tuned column lies on: its algorithm and its sweep values
    other than c (``psi@c=4.0,gamma=0.9`` -> ``psi (gamma=0.9)``; values hold no commas)."""
    others = [part for part in sweep.point_of(column).split(",")
              if part and not part.startswith("c=")]
    return sweep.algorithm_of(column) + (f" ({','.join(others)})" if others else "")


def against_c(metrics: dict, key: str) -> dict[str, list[tuple[float, float, float | None]]]:
    """``key`` against c: {line: [(c, mean, sd over seeds or None), ...] in the order of c},
    a line (:func:`line_label`) for each algorithm and setting tuned at two or more values of
    c."""
    columns, spread = table_columns(metrics)
    lines: dict[str, list[tuple[float, float, float | None]]] = {}
    for name in model_order(columns):
        c, value = _number(columns[name].get(C_KEY)), _number(columns[name].get(key))
        if name not in (DATA_COLUMN, MLE_MODEL) and None not in (c, value):
            lines.setdefault(line_label(name), []).append(
                (c, value, _number(spread.get(name, {}).get(key))))
    return {label: sorted(line) for label, line in lines.items()
            if len({c for c, _, _ in line}) > 1}


def statistics_against_c_png(metrics: dict, keys, info: dict[str, Statistic]) -> str | None:
    """One panel per statistic: its value against c (log scale), a line per algorithm (and
    setting of the sweep's other keys) with error bars of one standard deviation over seeds,
    the MLE (dashed) and the data (dotted) as references; fractions in percent. None without
    a sweep over c."""
    panels = [(key, lines) for key in keys if (lines := against_c(metrics, key))]
    if not panels:
        return None
    columns, _ = table_columns(metrics)
    width = min(3, len(panels))
    height = math.ceil(len(panels) / width)
    fig, axes = figure(height, width, figsize=(4.2 * width, 3.2 * height), squeeze=False)
    for axis, (key, lines) in zip(axes.flat, panels):
        statistic = info[key]
        scale = 100.0 if statistic.unit == FRACTION else 1.0
        for label, line in lines.items():
            axis.errorbar([c for c, _, _ in line], [scale * mean for _, mean, _ in line],
                          yerr=[scale * (sd or 0.0) for _, _, sd in line],
                          marker="o", capsize=3, label=label)
        for reference, style in ((MLE_MODEL, "--"), (DATA_COLUMN, ":")):
            value = _number(columns.get(reference, {}).get(key))
            if value is not None:
                axis.axhline(scale * value, color="black", linestyle=style, linewidth=1,
                             label=reference)
        axis.set_xscale("log")
        swept = sorted({c for line in lines.values() for c, _, _ in line})
        axis.set_xticks(swept, [f"{c:g}" for c in swept])  # the grid's values, not 10^k
        axis.minorticks_off()
        axis.set(title=statistic.label + (" (%)" if scale != 1.0 else ""), xlabel="c")
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    fig.tight_layout()
    return figure_uri(fig)


def model_order(names) -> list[str]:
    """The report's columns among ``names``: the data, the MLE model, then the tuned models in
    the algorithm table's order (an algorithm's sweep points in the order given)."""
    rank = {name: i for i, name in enumerate((DATA_COLUMN, MLE_MODEL, *algorithms.names()))}
    names = [name for name in names if sweep.algorithm_of(name) in rank]
    return sorted(names, key=lambda name: (rank[sweep.algorithm_of(name)], names.index(name)))


def read_curves(tune_dir: Path | None, models) -> dict[str, list[dict[str, float]]]:
    """The curve points (``layout.CURVE_FIELDS``, as numbers) of each tuned model among
    ``models`` (none without a tune dir). A damaged curves.csv leaves its curve out, with a
    warning, not the report."""
    curves = {}
    for model in models if tune_dir is not None else ():
        path = layout.tuned_dir(tune_dir, model) / layout.CURVES_FILE
        if not path.is_file():
            continue
        try:
            with path.open(encoding="utf-8") as handle:
                curves[model] = [{key: float(row[key]) for key in layout.CURVE_FIELDS}
                                 for row in csv.DictReader(handle)]
        except (OSError, ValueError, KeyError, TypeError) as error:  # TypeError: a short row
            log.warning("report: %s's curve left out: %s", model,
                        artifacts.damaged(path, error))
    return curves


def details_table(details: dict[str, dict], title: str, unit: str = VALUE,
                  row_units: dict[str, str] | None = None) -> str:
    """The domain's details per model, in ``unit`` but for the rows of ``row_units``."""
    names = model_order(details)
    kinds = list(next(iter(details.values())))
    rows = []
    for kind in kinds:
        values = [details[n].get(kind) for n in names]
        decimals = row_decimals(values)
        row_unit = (row_units or {}).get(kind, unit)
        rows.append(f"<tr><th class='stat'>{html.escape(kind.replace('_', ' '))}</th>"
                    + "".join(_td(format_value(v, row_unit, decimals),
                                  ["ref"] if n == DATA_COLUMN else [], missing="–")
                              for n, v in zip(names, values)) + "</tr>")
    return (f"<h2>{html.escape(title)}</h2><table><thead><tr><th></th>"
            + "".join(f"<th>{html.escape(n)}</th>" for n in names)
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin-bottom:1em}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "thead th{background:#f2f2f2}"
    "th.stat{text-align:left;font-weight:normal;white-space:nowrap}"
    "thead th.stat{font-weight:bold}"
    "th.group{text-align:center}"
    ".dir{color:#888;font-size:85%;margin-left:.5em}"
    "td.ref{font-style:italic;color:#333}"
    "td.diff,th.diff{color:#555;background:#fafafa}"
    "td.best{font-weight:bold;background:#d9f0d3}"
    "td.na{color:#bbb;text-align:center}"
    ".paper{color:#888;background:#f6f6f6}"
    "thead th.paper{background:#e9e9e9;color:#777;font-weight:normal}"
    "thead th.group.paper{font-style:italic}"
    ".first{border-left:3px double #888}"
    "img{max-width:100%}"
    "span.sd{color:#666;font-size:90%}"
)


def write_report(output: Path, metrics: dict, samples: dict[str, np.ndarray],
                 curves: dict[str, list[dict]], domain) -> Path:
    """Write ``output/report.html`` and return its path.

    ``samples``: a few episodes (actions) per model, drawn by ``domain.samples_html``.
    """
    keys = domain.statistic_keys
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sequence Tutor report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Sequence Tutor: evaluation</h1>",
        f"<p>{metrics['num_samples']:,} samples per model, domain {metrics['domain']}"
        + (f", rule name binding <code>{html.escape(str(metrics['name_binding']))}</code>"
           if "name_binding" in metrics else "")
        + (", reward weights " + ", ".join(
            f"<code>{html.escape(str(name))}</code> x{weight:g}"
            for name, weight in metrics["reward_weights"].items())
           if metrics.get("reward_weights") else "")
        + ". Fractions are shown as percentages (differences in percentage points, pp). "
        "<b>Bold</b>: the best model of the row (↑ higher, ↓ lower, →0 closer to zero is "
        "better); the <i>data</i> column is the reference, not a contender. The grey columns "
        "on the right are the paper's table (its corpus and models differ: read every model "
        "against the data column).</p>",
    ]
    if metrics.get("missing_models"):
        parts.append(f"<p>Not tuned, so not evaluated: "
                     f"{html.escape(', '.join(metrics['missing_models']))}.</p>")
    columns, spread = table_columns(metrics)
    if spread:
        parts.append("<p>Seeds swept: each tuned column is the mean ± standard deviation over "
                     "its seeds (every seed's values are in metrics.json).</p>")
        groups = metrics["seed_groups"]
        most = max(len(group["models"]) for group in groups.values())
        short = [f"{html.escape(name)} ({len(group['models'])} of {most})"
                 for name, group in groups.items() if len(group["models"]) < most]
        if short:
            parts.append(f"<p>Over fewer seeds than the others: {', '.join(short)}.</p>")
    parts += ["<h2>Statistics</h2>",
              statistics_table(columns, keys, domain.paper_table, statistic_info(domain, keys),
                               spread)]
    details = metrics.get(domain.details_key)
    if details:
        parts.append(details_table(details, domain.details_key.replace("_", " ").capitalize(),
                                   domain.details_unit, domain.details_row_units))
    curve_image = curves_png(curves)
    if curve_image:
        parts += ["<h2>Training curves (paper Figure 2)</h2>",
                  f"<img alt='training curves' src='{curve_image}'>"]
    rows = frontier_rows(metrics)
    write_frontier_csv(Path(output) / layout.FRONTIER_FILE, rows)
    frontier_image = frontier_png(rows)
    if frontier_image:
        parts += ["<h2>Task reward against the prior</h2>",
                  f"<img alt='frontier' src='{frontier_image}'>",
                  f"<p>The same numbers: <code>{layout.FRONTIER_FILE}</code>.</p>"]
    against_c_image = statistics_against_c_png(metrics, keys, statistic_info(domain, keys))
    if against_c_image:
        parts += ["<h2>Statistics against c</h2>",
                  "<p>Each statistic of the table against the c each model was tuned with (mean "
                  "± standard deviation over seeds); dashed: the MLE model, dotted: the "
                  "data.</p>",
                  f"<img alt='statistics against c' src='{against_c_image}'>"]
    objective = objective_table(metrics)
    if objective:
        parts += ["<h2>Nearest the common target: the KL-regularised reward</h2>",
                  "<p>E[r<sub>T</sub>] − c KL(π ‖ p) per sequence: the KL-control objective "
                  "(times c) that every algorithm but RL-only is built on. It equals "
                  "c (log Z − KL(π ‖ π*)) "
                  "for their common target π* ∝ p exp(r<sub>T</sub> / c) (undiscounted "
                  "episodes; with gamma below 1 the off-policy algorithms aim at a discounted "
                  "version of it), so along a row the larger value is the model nearer π*. The "
                  "mle column is the prior itself, which every tuned model should beat.</p>",
                  objective]
    swept = [sweep.algorithm_of(name) for name in columns
             if name not in (DATA_COLUMN, MLE_MODEL)]
    matched = {key: matched_columns(metrics, key=key) for key in MATCH_KEYS}
    if len(swept) > len(set(swept)) and any(matched.values()):  # an algorithm at 2+ points
        parts += ["<h2>At matched closeness to the prior</h2>",
                  "<p>Task reward and rules compared at one distance from the prior: each "
                  "algorithm at its point nearest to a common value (the median of the tuned "
                  "columns) of each measure of closeness.</p>"]
        matched_keys = [*keys, KL_KEY]  # the KL matched on is a row of the tables
        matched_info = {**statistic_info(domain, keys), KL_KEY: Statistic(MATCH_KEYS[KL_KEY])}
        for key, match in matched.items():
            if match is None:
                continue
            target, chosen = match
            shown = {name: columns[name] for name in (DATA_COLUMN, MLE_MODEL) if name in columns}
            shown.update({name: columns[name] for name in chosen.values()})
            parts += [f"<h3>On {MATCH_KEYS[key]}</h3>",
                      f"<p>Each algorithm at its point whose {MATCH_KEYS[key]} is nearest to "
                      f"{target:.3f} nats per token.</p>",
                      statistics_table(shown, matched_keys, {}, matched_info, spread)]
    parts.append("<h2>Samples</h2>")
    for name in model_order(samples):
        parts += [f"<h3>{html.escape(name)}</h3>", domain.samples_html(name, samples[name])]
    parts.append("</body></html>")
    path = Path(output) / layout.REPORT_FILE
    path.write_text("\n".join(parts))
    return path
