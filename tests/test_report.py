"""The evaluation report opens in headless Chromium with every picture and sound loaded."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from seqtutor.components import report
from seqtutor import domains
from seqtutor.domains.melody.statistics import STATISTIC_KEYS
from seqtutor.domains.melody.config import MelodyRewardConfig

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


def synthetic_report(tmp_path):
    rng = np.random.default_rng(0)
    models = {name: {key: float(rng.random()) for key in STATISTIC_KEYS}
              for name in ("data", "mle", "q", "psi")}
    metrics = {"domain": "melody", "num_samples": 10, "name_binding": "data",
               "models": models, "missing_models": ["g", "rl_only"]}
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
    assert text.count("<img") == 1 + 4 and text.count("<audio") == 2 * 4
    assert "paper MLE" in text and "Not tuned, so not evaluated: g, rl_only" in text


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
               "outcomes": {name: {"valid": 0.8} for name in models}}
    return report.write_report(tmp_path, metrics, {name: actions for name in models}, {}, domain)


def test_molecule_report_draws_the_valid_molecules(tmp_path):
    text = synthetic_molecule_report(tmp_path).read_text()
    assert text.count("alt='molecules of") == 2 and "paper Psi" in text
    assert "C1CC(" in text  # the invalid string is listed, not drawn


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
@pytest.mark.parametrize("kind", ["melody", "molecule"])
def test_report_renders_in_headless_chromium_with_no_missing_resource(tmp_path, kind):
    path = synthetic_report(tmp_path) if kind == "melody" else synthetic_molecule_report(tmp_path)
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text().replace("</body>", PROBE + "</body>"))
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
              "--virtual-time-budget=10000"]
    dom = subprocess.run(common + ["--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    expected = ("RESULT images=5 broken=0 audio=8 audio_errors=0" if kind == "melody" else
                "RESULT images=2 broken=0 audio=0 audio_errors=0")
    assert expected in dom
    shot = tmp_path / "report.png"
    subprocess.run(common + ["--window-size=1200,2000", f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
