"""The evaluation report: its statistics table reads like the paper's (fractions as
percentages, plain decimals otherwise, the best model of each row in bold by the row's direction,
the paper's columns apart), and it opens in headless Chromium with every picture and sound
loaded."""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from seqtutor.components import report
from seqtutor import domains, plugins
from seqtutor.domains.melody.statistics import STATISTIC_KEYS, STATISTICS as MELODY
from seqtutor.domains.melody.config import MelodyRewardConfig
from seqtutor.domains.molecule.reward import STATISTICS as MOLECULE
from seqtutor.statistic import FRACTION, HIGHER, LOWER, Statistic


class BuiltIn:  # both built-in domains' declarations, as a domain would hold them
    statistic_info = {**MELODY, **MOLECULE}


def statistics_table(models, keys, paper):
    return report.statistics_table(models, keys, paper, report.statistic_info(BuiltIn, keys))

CHROMIUM = shutil.which("chromium")
# Appended to a copy of the report: once loaded, the page title tells whether every image
# decoded and every audio clip loaded its data.
PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const audios = [...document.querySelectorAll('audio')];
  const check = () => {
    const brokenImages = images.filter(i => !i.complete || i.naturalWidth === 0).length;
    const audioErrors = audios.filter(a => a.error !== null).length;
    const waiting = audios.filter(a => a.readyState < 1 && a.error === null).length;
    if (waiting > 0) { setTimeout(check, 50); return; }
    document.title = `RESULT images=${images.length} broken=${brokenImages} ` +
                     `audio=${audios.length} audio_errors=${audioErrors}`;
  };
  check();
});
</script>"""


def synthetic_report(tmp_path, **extras):
    rng = np.random.default_rng(0)
    models = {name: {key: float(rng.random()) for key in STATISTIC_KEYS}
              for name in ("data", "mle", "q", "psi")}
    metrics = {"domain": "melody", "num_samples": 10, "name_binding": "data",
               "models": models, "missing_models": ["g", "rl_only"], **extras}
    melody = [14, 0, 16, 0, 18, 0, 1, 0, 21, 0, 0, 0, 19, 18, 16, 14] * 2
    samples = {name: np.array([melody] * 2) for name in models}
    curves = {"q": [{"step": 0, "mean_task_reward": -300, "mean_log_prior": -0.9},
                    {"step": 100, "mean_task_reward": 50, "mean_log_prior": -1.4}]}
    return report.write_report(tmp_path, metrics, samples, curves,
                               domains.get_domain("melody", MelodyRewardConfig()))


def test_report_is_self_contained(tmp_path):
    text = synthetic_report(tmp_path).read_text()
    for attribute in re.findall(r"(?:src|href)='([^']*)'", text):
        assert attribute.startswith("data:"), attribute[:60]
    # The frontier, the curves and a piano roll per model.
    assert text.count("<img") == 2 + 4 and text.count("<audio") == 2 * 4
    assert "paper MLE" in text and "Not tuned, so not evaluated: g, rl_only" in text
    assert "reward weights" not in text


def test_report_names_the_reward_weights_when_the_config_sets_them(tmp_path):
    text = synthetic_report(tmp_path, reward_weights={"tonic": 4.0, "extrema": 2.5}).read_text()
    assert "reward weights <code>tonic</code> x4, <code>extrema</code> x2.5" in text


def synthetic_molecule_report(tmp_path):
    from seqtutor.domains.molecule import reward, tokens
    from seqtutor.domains.molecule.config import MoleculeRewardConfig

    vocab = tokens.vocabulary(list("CcNO()=1"), min_length=3, max_length=20, max_carbon_run=5)
    domain = domains.get_domain("molecule", MoleculeRewardConfig(workers=1), vocab)
    codec = tokens.Codec(vocab)
    strings = ["CCO", "c1ccccc1N", "CC(=O)O", "C1CC(", "OCCN"]
    actions = np.zeros((len(strings), 21), np.int32)
    for row, smiles in enumerate(strings):
        ids = codec.encode(smiles)[1:]
        actions[row, :len(ids)] = ids
    models = {name: {key: 0.5 for key in reward.STATISTIC_KEYS} for name in ("data", "mle")}
    metrics = {"domain": "molecule", "num_samples": 5, "models": models, "missing_models": [],
               "outcomes": {name: {"valid": 0.8, "scoring_errors": 2 if name == "data" else 0}
                            for name in models}}
    return report.write_report(tmp_path, metrics, {name: actions for name in models}, {}, domain)


def test_molecule_report_draws_the_valid_molecules(tmp_path):
    text = synthetic_molecule_report(tmp_path).read_text()
    assert text.count("alt='molecules of") == 2 and "paper Psi" in text
    assert "C1CC(" in text  # the invalid string is listed, not drawn


class _Table(HTMLParser):
    """The statistics table's cells: {row key: {column: (classes, text)}}. A row is named by its
    header's title (the statistic's key), a column by the second header row ("paper MLE" for
    the paper's MLE column)."""

    def __init__(self, text):
        super().__init__()
        self.columns, self.rows, self.header_rows, self.cell, self.row = [], {}, 0, None, None
        start = text.index("<table class='statistics'>")
        self.feed(text[start:text.index("</table>", start)])

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and not self.rows:
            self.header_rows += 1
        if tag in ("td", "th"):
            self.cell = [attrs.get("class", "").split(), "", attrs.get("title")]

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data

    def handle_endtag(self, tag):
        if tag not in ("td", "th") or self.cell is None:
            return
        classes, text, title = self.cell
        self.cell = None
        if tag == "th" and "stat" in classes and title:  # a body row's header
            self.row = self.rows.setdefault(title, {})
        elif tag == "td":
            self.row[self.columns[len(self.row)]] = (classes, text)
        elif self.header_rows == 2:
            self.columns.append(("paper " if "paper" in classes else "") + text)


def table(models, keys, paper=None, info=None):
    info = info if info is not None else report.statistic_info(BuiltIn, keys)
    return _Table(report.statistics_table(models, keys, paper or {}, info)).rows


@pytest.mark.parametrize("value, text", [
    (0.0, "0.0%"), (1.0, "100.0%"), (0.123, "12.3%"), (0.12349, "12.3%"), (0.6331, "63.3%"),
    (9.375e-05, "0.009%"), (0.0002, "0.02%"), (0.00107, "0.1%"), (1e-9, "<0.001%"),
    (float("nan"), ""), (None, "")])
def test_fractions_are_percentages_with_one_decimal(value, text):
    assert report.format_value(value, report.FRACTION) == text


def test_values_are_plain_decimals_with_the_rows_digits():
    assert report.row_decimals([-0.16, 0.55]) == 3 and report.row_decimals([2.07, 4.2]) == 2
    assert report.row_decimals([-300.52, 79.4]) == 1 and report.row_decimals([0.0002]) == 5
    assert report.format_value(-0.16, report.VALUE, 3) == "-0.160"
    assert report.format_value(-300.52, report.VALUE, 1) == "-300.5"
    assert report.format_value(12345.67, report.VALUE, 1) == "12,345.7"
    assert report.format_value(-0.0001, report.VALUE, 3) == "0.000"  # no negative zero
    assert report.format_value(3, report.VALUE) == "3" and report.format_value(7.0, "count") == "7"
    for magnitude in (1e-6, 1e-4, 0.01, 0.5, 3, 42, 777, 1e5, 1e8):
        text = report.format_value(-magnitude, report.VALUE, report.row_decimals([magnitude]))
        assert "e" not in text and float(text.replace(",", "")) != 0, text
    assert report.format_difference(0.012, report.FRACTION) == "+1.2 pp"
    assert report.format_difference(-0.5, report.VALUE, 2) == "-0.50"
    assert report.format_difference(0.0, report.FRACTION) == "0.0 pp"


def test_the_statistics_table_formats_each_row_by_its_unit():
    models = {"data": {"repeated_notes": 0.5, "mean_task_reward": -292.13},
              "mle": {"repeated_notes": 9.375e-05, "mean_task_reward": 79.4}}
    rows = table(models, ["repeated_notes", "mean_task_reward"])
    assert rows["repeated_notes"]["mle"][1] == "0.009%"
    assert rows["repeated_notes"]["mle − data"][1] == "-50.0 pp"
    assert rows["mean_task_reward"]["data"][1] == "-292.1"
    assert rows["mean_task_reward"]["mle"][1] == "79.4"


def best(row):
    return sorted(column for column, (classes, _) in row.items() if "best" in classes)


def test_the_best_model_is_marked_by_the_rows_direction():
    models = {"data": {"repeated_notes": 0.0, "notes_in_motif": 0.99, "autocorr_lag1": 0.0},
              "mle": {"repeated_notes": 0.6, "notes_in_motif": 0.3, "autocorr_lag1": -0.3},
              "q": {"repeated_notes": 0.1, "notes_in_motif": 0.7, "autocorr_lag1": -0.05},
              "psi": {"repeated_notes": 0.2, "notes_in_motif": 0.8, "autocorr_lag1": 0.1}}
    paper = {"columns": ("MLE", "Q"), "rows": {"repeated_notes": (0.0, 0.0),
                                              "notes_in_motif": (0.9, 0.95)}}
    rows = table(models, ["repeated_notes", "notes_in_motif", "autocorr_lag1"], paper)
    assert best(rows["repeated_notes"]) == ["q"]  # lower is better; data and paper do not count
    assert best(rows["notes_in_motif"]) == ["psi"]  # higher is better
    assert best(rows["autocorr_lag1"]) == ["q"]  # closer to zero is better
    classes, text = rows["repeated_notes"]["q"]
    assert text == "10.0%"
    assert "<td class='best'><b>10.0%</b></td>" in statistics_table(
        models, ["repeated_notes"], paper)


def test_ties_are_all_marked_but_a_row_all_tied_is_not():
    models = {"mle": {"valid": 0.1231, "mean_qed": 0.5, "int_div1": 0.4},
              "q": {"valid": 0.1229, "mean_qed": 0.5, "int_div1": 0.2},  # both show 12.3%
              "psi": {"valid": 0.05, "mean_qed": 0.5, "int_div1": float("nan")}}
    rows = table(models, ["valid", "mean_qed", "int_div1"])
    assert best(rows["valid"]) == ["mle", "q"]
    assert best(rows["mean_qed"]) == []
    assert best(rows["int_div1"]) == ["mle"]  # NaN does not compete
    assert rows["int_div1"]["psi"] == (["na"], "–")
    assert best(table({"mle": {"valid": 0.5}}, ["valid"])["valid"]) == []  # nothing to beat


def test_the_papers_columns_are_apart_under_their_own_header():
    models = {"data": {"valid": 0.9}, "mle": {"valid": 0.5}, "psi": {"valid": 0.2}}
    paper = {"columns": ("MLE", "Psi"), "rows": {"valid": (0.303, 0.358)}}
    text = statistics_table(models, ["valid"], paper)
    assert "class='group run'>this run</th>" in text
    assert "class='group paper first'>paper (Jaques et al. 2017)</th>" in text
    rows = _Table(text).rows
    assert rows["valid"]["paper MLE"] == (["paper", "first"], "30.3%")
    assert rows["valid"]["paper Psi"] == (["paper"], "35.8%")
    assert best(rows["valid"]) == ["mle"]  # the paper's 35.8% and the data's 90% do not compete
    assert "paper (Jaques et al. 2017)" not in statistics_table(models, ["valid"], {})
    assert ">paper (Jaques et al. 2017, Table 2)</th>" in statistics_table(
        models, ["valid"], {**paper, "source": "Jaques et al. 2017, Table 2"})


def test_a_domains_declaration_rules_and_undeclared_keys_are_plain():
    class Declared:
        statistic_info = {"ascending_steps": Statistic("ascending steps", FRACTION, HIGHER),
                          "valid": Statistic("parsed", FRACTION, LOWER)}

    info = report.statistic_info(Declared(), ["ascending_steps", "valid", "mystery_key"])
    assert info["valid"] == Statistic("parsed", "fraction", "lower")
    assert info["mystery_key"] == Statistic("mystery key", "value", None)
    models = {"mle": {"ascending_steps": 0.25, "mystery_key": 0.25},
              "q": {"ascending_steps": 0.5, "mystery_key": 0.5}}
    rows = table(models, ["ascending_steps", "mystery_key"], info=info)
    assert rows["ascending_steps"]["q"] == (["best"], "50.0%")
    assert rows["mystery_key"]["q"] == ([], "0.500") and best(rows["mystery_key"]) == []
    with pytest.raises(ValueError, match="unit"):
        Statistic("x", unit="percent")


def test_the_melody_report_shows_the_tables_units(tmp_path):
    text = synthetic_report(tmp_path).read_text()
    rows = _Table(text).rows
    assert rows["repeated_notes"]["paper MLE"][1] == "63.3%"
    assert rows["notes_in_repeated_motif"]["paper MLE"][1] == "0.007%"
    assert rows["autocorr_lag1"]["paper MLE"][1] == "-0.160"
    assert all(len(best(rows[key])) >= 1 for key in ("repeated_notes", "mean_task_reward"))
    tables = text[text.index("<h2>Statistics</h2>"):text.index("<h2>Training curves")]
    assert not re.search(r"\de[-+]?\d", tables)  # no scientific notation


def test_the_molecule_reports_outcomes_are_percentages_and_errors_counts(tmp_path):
    text = synthetic_molecule_report(tmp_path).read_text()
    assert "<th class='stat'>valid</th><td class='ref'>80.0%</td><td>80.0%</td>" in text
    assert "<th class='stat'>scoring errors</th><td class='ref'>2</td><td>0</td>" in text


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
@pytest.mark.parametrize("kind", ["melody", "molecule", "sweep"])
def test_report_renders_in_headless_chromium_with_no_missing_resource(tmp_path, kind):
    if kind == "sweep":  # the frontier and the statistics against c
        path = report.write_report(tmp_path, seed_sweep_metrics(), {}, {},
                                   domains.get_domain("melody", MelodyRewardConfig()))
    else:
        path = (synthetic_report if kind == "melody" else synthetic_molecule_report)(tmp_path)
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text().replace("</body>", PROBE + "</body>"))
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
              "--virtual-time-budget=10000"]
    dom = subprocess.run(common + ["--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    expected = ("RESULT images=6 broken=0 audio=8 audio_errors=0" if kind == "melody" else
                "RESULT images=2 broken=0 audio=0 audio_errors=0")  # molecule, sweep
    assert expected in dom
    shot = tmp_path / "report.png"
    subprocess.run(common + ["--window-size=1200,2000", f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_every_built_in_statistic_declares_how_it_reads():
    for name in ("melody", "molecule"):
        domain = plugins.domain_class(name)
        assert tuple(domain.statistic_info) == tuple(domain.statistic_keys), name
        assert all(isinstance(s, Statistic) for s in domain.statistic_info.values()), name


def seed_sweep_metrics():
    """Two algorithms at two values of c with two seeds each, as evaluate writes them."""
    from seqtutor import sweep
    from seqtutor.components.evaluate import over_seeds

    points = [sweep.Point((("tune.c", c), ("seed", seed))) for c in (0.5, 2) for seed in (0, 1)]
    models = {"data": {"mean_task_reward": 1.0, "mean_log_prior": -1.0, "repeated_notes": 0.0},
              "mle": {"mean_task_reward": 0.0, "mean_log_prior": -1.1, "repeated_notes": 0.1,
                      report.SEQUENCE_KL_KEY: 0.0}}
    for algorithm, steps in (("q", 2), ("psi", 1)):
        for point in points:
            c, seed = dict(point.values)["tune.c"], dict(point.values)["seed"]
            reward, kl = 10 / c + seed, 1 / c + seed / 10
            models[sweep.variant(algorithm, point)] = {
                "mean_task_reward": reward, "mean_log_prior": -1.2 - 1 / c + seed / 10,
                "repeated_notes": 0.01 * (seed + 1), report.KL_KEY: kl,
                report.SEQUENCE_KL_KEY: steps * kl, report.C_KEY: c,
                report.OBJECTIVE_KEY: reward - c * steps * kl}
    groups = over_seeds(models, sweep.seed_groups(["q", "psi"], points))
    return {"domain": "melody", "num_samples": 10, "models": models, "missing_models": [],
            "seed_groups": groups}


def test_seeds_are_averaged_into_one_column_with_their_spread():
    metrics = seed_sweep_metrics()
    group = metrics["seed_groups"]["psi@c=0.5"]
    assert group["models"] == ["psi@c=0.5,seed=0", "psi@c=0.5,seed=1"]
    # 20 and 21: mean 20.5, sample sd sqrt(0.5).
    assert group["mean"]["mean_task_reward"] == 20.5
    assert group["sd"]["mean_task_reward"] == pytest.approx(0.5 ** 0.5)
    columns, spread = report.table_columns(metrics)
    assert list(report.model_order(columns)) == ["data", "mle", "q@c=0.5", "q@c=2", "psi@c=0.5",
                                                 "psi@c=2"]
    html_text = report.statistics_table(columns, ["repeated_notes"], {}, MELODY, spread)
    assert "<b>1.5%</b> <span class='sd'>± 0.7%</span>" in html_text  # 1% and 2%


def test_the_frontier_has_a_row_per_column_and_is_drawn(tmp_path):
    metrics = seed_sweep_metrics()
    rows = report.frontier_rows(metrics)
    assert [r["model"] for r in rows] == ["data", "mle", "q@c=0.5", "q@c=2", "psi@c=0.5",
                                          "psi@c=2"]
    psi = rows[4]
    assert (psi["algorithm"], psi["seeds"]) == ("psi", 2)
    assert psi["mean_log_prior"] == pytest.approx(-3.15)  # -1.2 - 1/0.5 + (0 + 0.1)/2
    assert psi[report.KL_KEY] == pytest.approx(2.05) and psi[f"sd_{report.KL_KEY}"] > 0
    assert rows[1]["sd_task_reward"] is None and rows[1][report.KL_KEY] is None
    path = report.write_report(tmp_path, metrics, {}, {},
                               domains.get_domain("melody", MelodyRewardConfig()))
    text = path.read_text()
    assert "alt='frontier'" in text and "mean ± standard deviation over its seeds" in text
    written = (tmp_path / "frontier.csv").read_text().splitlines()
    assert written[0] == ",".join(report.FRONTIER_FIELDS) and len(written) == 1 + 6
    assert "fewer seeds" not in text


def test_a_sweep_over_c_and_another_key_draws_a_frontier_line_per_value_of_that_key():
    rows = [{"model": "data", "algorithm": "data", "mean_task_reward": 1.0,
             "mean_log_prior": -1.0, report.KL_KEY: None}]
    for name, log_prior in (("psi@c=2,gamma=0.5", -1.4), ("psi@c=0.5,gamma=0.5", -1.9),
                            ("psi@c=0.5,gamma=0.9", -2.1), ("q@c=0.5,gamma=0.9", None)):
        rows.append({"model": name, "algorithm": name.split("@")[0], "mean_task_reward": 2.0,
                     "mean_log_prior": log_prior, report.KL_KEY: 0.1})
    lines = report.frontier_lines(rows, "mean_log_prior")
    assert {label: [r["model"] for r in line] for label, line in lines.items()} == {
        "psi (gamma=0.5)": ["psi@c=0.5,gamma=0.5", "psi@c=2,gamma=0.5"],  # in the order of x
        "psi (gamma=0.9)": ["psi@c=0.5,gamma=0.9"]}
    assert list(report.frontier_lines(rows, report.KL_KEY)) == [
        "psi (gamma=0.5)", "psi (gamma=0.9)", "q (gamma=0.9)"]
    assert report.frontier_png(rows[:1]) is None  # no tuned model: nothing to draw


def test_each_statistic_is_drawn_against_c_with_its_spread_over_seeds(tmp_path):
    metrics = seed_sweep_metrics()
    # psi's r_T is 10 / c + seed: 20.5 at c = 0.5 and 5.5 at c = 2, sd sqrt(0.5) at both.
    lines = report.against_c(metrics, "mean_task_reward")
    assert list(lines) == ["q", "psi"]
    assert [(c, mean) for c, mean, _ in lines["psi"]] == [(0.5, 20.5), (2, 5.5)]
    assert all(sd == pytest.approx(0.5 ** 0.5) for _, _, sd in lines["psi"])
    # A sweep over another key too: a line per algorithm and value of that key.
    assert report.line_label("psi@c=4.0,gamma=0.9") == "psi (gamma=0.9)"
    assert report.line_label("q@c=4.0") == "q" and report.line_label("mle") == "mle"
    text = report.write_report(tmp_path, metrics, {}, {},
                               domains.get_domain("melody", MelodyRewardConfig())).read_text()
    assert text.count("alt='statistics against c'") == 1
    # One value of c per algorithm: nothing to draw against c.
    for name in [n for n in metrics["seed_groups"] if n.endswith("c=2")]:
        for model in metrics["seed_groups"].pop(name)["models"]:
            del metrics["models"][model]
    assert report.against_c(metrics, "mean_task_reward") == {}
    assert report.statistics_against_c_png(metrics, ["mean_task_reward"], MELODY) is None


def test_the_kl_regularised_reward_is_tabled_by_c_with_the_best_in_bold(tmp_path):
    metrics = seed_sweep_metrics()
    # At c = 0.5, q (2 steps): 20 + s - 0.5 * 2 * (2 + s / 10) = 18 + 0.9 s, mean 18.45 over
    # seeds 0 and 1; psi (1 step): 19 + 0.95 s, mean 19.475. At c = 2: q 3 + 0.6 s (3.3),
    # psi 4 + 0.8 s (4.4). The MLE: r_T 0 and KL 0 at either c.
    rows = {row["model"]: row for row in report.frontier_rows(metrics)}
    assert rows["psi@c=0.5"][report.OBJECTIVE_KEY] == pytest.approx(19.475)
    assert rows["psi@c=0.5"][f"sd_{report.OBJECTIVE_KEY}"] == pytest.approx(0.95 / 2 ** 0.5)
    assert rows["q@c=2"][report.OBJECTIVE_KEY] == pytest.approx(3.3)
    table = report.objective_table(metrics)
    assert "<th>mle</th><th>q</th><th>psi</th>" in table
    half, two = table.split("<th class='stat'>c=0.5</th>")[1].split("<th class='stat'>c=2</th>")
    assert "<td class='ref'>0.00</td>" in half and "<b>19.4" in half and "<b>18" not in half
    assert "<td class='ref'>0.00</td>" in two and "<b>4.40" in two and "3.30 <span" in two
    text = report.write_report(tmp_path, metrics, {}, {},
                               domains.get_domain("melody", MelodyRewardConfig())).read_text()
    assert "the KL-regularised reward</h2>" in text and table in text
    # Without a tuned model that has it (an older metrics.json), no table.
    for stats in metrics["models"].values():
        stats.pop(report.OBJECTIVE_KEY, None)
    for group in metrics["seed_groups"].values():
        group["mean"].pop(report.OBJECTIVE_KEY)
    assert report.objective_table(metrics) is None


def test_a_group_over_fewer_seeds_is_named(tmp_path):
    from seqtutor.components.evaluate import over_seeds

    metrics = seed_sweep_metrics()
    del metrics["models"]["q@c=2,seed=1"]  # one seed's run is missing
    groups = {name: group["models"] for name, group in metrics["seed_groups"].items()}
    groups["q@c=2"] = ["q@c=2,seed=0", "q@c=2,seed=1"]
    metrics["seed_groups"] = over_seeds(metrics["models"], groups)
    assert metrics["seed_groups"]["q@c=2"]["sd"]["mean_task_reward"] is None
    text = report.write_report(tmp_path, metrics, {}, {},
                               domains.get_domain("melody", MelodyRewardConfig())).read_text()
    assert "Over fewer seeds than the others: q@c=2 (1 of 2)." in text


def test_the_matched_table_takes_each_algorithms_point_nearest_a_common_log_prior(tmp_path):
    metrics = seed_sweep_metrics()
    # Over seeds, both algorithms' mean log p is -3.15 at c = 0.5 and -1.65 at c = 2.
    assert report.matched_columns(metrics, -1.7) == (-1.7, {"q": "q@c=2", "psi": "psi@c=2"})
    assert report.matched_columns(metrics, -3.0)[1] == {"q": "q@c=0.5", "psi": "psi@c=0.5"}
    metrics["seed_groups"]["psi@c=0.5"]["mean"]["mean_log_prior"] = -2.0
    # psi's -2.0 is nearer to -1.9 than its -1.65; q's -1.65 nearer than its -3.15.
    assert report.matched_columns(metrics, -1.9)[1] == {"q": "q@c=2", "psi": "psi@c=0.5"}
    # By default, the median of the tuned columns' -3.15, -1.65, -2.0 and -1.65: -1.825 (psi's
    # two points are then equally near: the earlier one).
    target, chosen = report.matched_columns(metrics)
    assert target == pytest.approx(-1.825) and chosen == {"q": "q@c=2", "psi": "psi@c=0.5"}
    text = report.write_report(tmp_path, metrics, {}, {},
                               domains.get_domain("melody", MelodyRewardConfig())).read_text()
    section = text.split("At matched closeness to the prior")[1].split("<h2>")[0]
    on_log_prior = section.split("<h3>On mean log p(a|s) under the prior</h3>")[1].split("<h3>")[0]
    assert "-1.825 nats per token" in on_log_prior
    assert "<th>q@c=2</th><th>psi@c=0.5</th>" in on_log_prior and "q@c=0.5" not in on_log_prior


def test_the_matched_table_can_hold_the_kl_from_the_prior_fixed_instead(tmp_path):
    metrics = seed_sweep_metrics()
    # Over seeds, both algorithms' KL per token is 2.05 at c = 0.5 and 0.55 at c = 2.
    assert report.matched_columns(metrics, 0.6, report.KL_KEY) == (
        0.6, {"q": "q@c=2", "psi": "psi@c=2"})
    # The two measures can disagree: let psi at c = 0.5 stay far on log p (-3.15) but come near
    # on KL (1.0). Matched at a KL of 0.9 psi is at c = 0.5; matched at a log p of -1.7, at c = 2.
    metrics["seed_groups"]["psi@c=0.5"]["mean"][report.KL_KEY] = 1.0
    assert report.matched_columns(metrics, 0.9, report.KL_KEY)[1] == {"q": "q@c=2",
                                                                     "psi": "psi@c=0.5"}
    assert report.matched_columns(metrics, -1.7)[1] == {"q": "q@c=2", "psi": "psi@c=2"}
    # By default the median of 2.05, 0.55, 1.0 and 0.55: 0.775 (q: 0.55 is nearest; psi: its
    # 1.0 (0.225 away) against its 0.55 (0.225 away): a tie, so the earlier column).
    target, chosen = report.matched_columns(metrics, key=report.KL_KEY)
    assert target == pytest.approx(0.775) and chosen == {"q": "q@c=2", "psi": "psi@c=0.5"}
    with pytest.raises(ValueError, match="cannot match on 'mean_task_reward'"):
        report.matched_columns(metrics, key="mean_task_reward")
    text = report.write_report(tmp_path, metrics, {}, {},
                               domains.get_domain("melody", MelodyRewardConfig())).read_text()
    on_kl = text.split("<h3>On KL(π ‖ p)</h3>")[1].split("<h")[0]
    assert "nearest to 0.775 nats per token" in on_kl
    on_kl_table = text.split("<h3>On KL(π ‖ p)</h3>")[1].split("<h2>")[0]
    assert "<th>q@c=2</th><th>psi@c=0.5</th>" in on_kl_table
    assert "title='kl_per_token'>KL(π ‖ p)<" in on_kl_table  # what it matched on is a row


def test_no_matched_table_without_a_sweep(tmp_path):
    metrics = {"domain": "melody", "num_samples": 10, "missing_models": [],
               "models": {"mle": {"mean_task_reward": 0.0, "mean_log_prior": -1.1},
                          "q": {"mean_task_reward": 3.0, "mean_log_prior": -1.5}}}
    assert report.matched_columns(metrics) == (-1.5, {"q": "q"})
    text = report.write_report(tmp_path, metrics, {}, {},
                               domains.get_domain("melody", MelodyRewardConfig())).read_text()
    assert "matched closeness" not in text and "statistics against c" not in text
