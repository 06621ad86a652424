"""The evaluation report: one self-contained HTML file (every picture, MIDI file and sound is
embedded as a data URI, so it opens anywhere, offline, and can be mailed around).

Sections: the statistics of every model beside the data row and the paper's table; the domain's
details (melody: intervals per composition; molecule: outcomes); the tuning curves of every
algorithm (the paper's Figure 2); samples of each model as the domain draws them (melody: piano
rolls with MIDI and WAV; molecule: a grid of RDKit drawings).
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

import numpy as np

from seqtutor import layout
from seqtutor.config import MLE_MODEL
from seqtutor.figures import figure, figure_uri
from seqtutor.rl import algorithms



def curves_png(curves: dict[str, list[dict]]) -> str | None:
    """Mean r_T and mean log p(a|s) against environment steps, one line per algorithm."""
    if not curves:
        return None
    fig, (reward_axis, prior_axis) = figure(1, 2, figsize=(11, 3.8))
    for algorithm, rows in curves.items():
        steps = [float(r["step"]) for r in rows]
        reward_axis.plot(steps, [float(r["mean_task_reward"]) for r in rows], label=algorithm)
        prior_axis.plot(steps, [float(r["mean_log_prior"]) for r in rows], label=algorithm)
    reward_axis.set(title="mean r_T per episode", xlabel="environment steps")
    prior_axis.set(title="mean log p(a|s) under the Reward RNN", xlabel="environment steps")
    reward_axis.legend()
    return figure_uri(fig)


def _cell(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else f"{value:.4g}"


def statistics_table(models: dict[str, dict], keys, paper: dict) -> str:
    """Models side by side, the MLE row's distance to the data, and the paper's table
    (``paper``: {"columns": names, "rows": {key: values}})."""
    names = [m for m in model_order() if m in models]
    compare = "data" in models and "mle" in models
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    head += "<th>mle - data</th>" if compare else ""
    columns = paper.get("columns", ())
    paper_head = "".join(f"<th class='paper'>paper {n}</th>" for n in columns)
    rows = []
    for key in keys:
        cells = "".join(f"<td>{_cell(models[n].get(key))}</td>" for n in names)
        if compare:
            cells += f"<td>{_cell(models['mle'][key] - models['data'][key])}</td>"
        values = paper.get("rows", {}).get(key, (None,) * len(columns))
        paper_cells = "".join(f"<td class='paper'>{_cell(v)}</td>" for v in values)
        rows.append(f"<tr><th>{key}</th>{cells}{paper_cells}</tr>")
    return (f"<table><thead><tr><th>statistic</th>{head}{paper_head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def model_order() -> tuple[str, ...]:
    """The report's columns: the data, the MLE model, then the algorithm table's order."""
    return ("data", MLE_MODEL, *algorithms.names())


def read_curves(tune_dir: Path | None) -> dict[str, list[dict]]:
    """Every tuned algorithm's curves.csv rows, by algorithm (none without a tune dir)."""
    curves = {}
    for algorithm in algorithms.names() if tune_dir is not None else ():
        path = layout.tuned_dir(tune_dir, algorithm) / layout.CURVES_FILE
        if path.is_file():
            with path.open() as handle:
                curves[algorithm] = list(csv.DictReader(handle))
    return curves


def details_table(details: dict[str, dict], title: str) -> str:
    names = [m for m in model_order() if m in details]
    kinds = list(next(iter(details.values())))
    rows = "".join(f"<tr><th>{html.escape(kind)}</th>"
                   + "".join(f"<td>{_cell(details[n].get(kind))}</td>" for n in names) + "</tr>"
                   for kind in kinds)
    return (f"<h2>{html.escape(title)}</h2><table><thead><tr><th></th>"
            + "".join(f"<th>{n}</th>" for n in names) + f"</tr></thead>{rows}</table>")


def write_report(output: Path, metrics: dict, samples: dict[str, np.ndarray],
                 curves: dict[str, list[dict]], domain) -> Path:
    """Write ``output/report.html`` and return its path.

    ``samples``: a few episodes (actions) per model, drawn by ``domain.samples_html``.
    """
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sequence Tutor report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}.paper{color:#777}img{max-width:100%}</style></head><body>",
        "<h1>Sequence Tutor: evaluation</h1>",
        f"<p>{metrics['num_samples']:,} samples per model, domain {metrics['domain']}"
        + (f", rule name binding <code>{html.escape(str(metrics['name_binding']))}</code>"
           if "name_binding" in metrics else "")
        + ". Fractions are fractions; the grey columns are the paper's table (its corpus and "
        "models differ: read every model against the data row).</p>",
    ]
    if metrics.get("missing_models"):
        parts.append(f"<p>Not tuned, so not evaluated: "
                     f"{html.escape(', '.join(metrics['missing_models']))}.</p>")
    parts += ["<h2>Statistics</h2>",
              statistics_table(metrics["models"], domain.statistic_keys, domain.paper_table)]
    details = metrics.get(domain.details_key)
    if details:
        parts.append(details_table(details, domain.details_key.replace("_", " ").capitalize()))
    curve_image = curves_png(curves)
    if curve_image:
        parts += ["<h2>Training curves (paper Figure 2)</h2>",
                  f"<img alt='training curves' src='{curve_image}'>"]
    parts.append("<h2>Samples</h2>")
    for name in (m for m in model_order() if m in samples):
        parts += [f"<h3>{html.escape(name)}</h3>", domain.samples_html(name, samples[name])]
    parts.append("</body></html>")
    path = Path(output) / layout.REPORT_FILE
    path.write_text("\n".join(parts))
    return path
