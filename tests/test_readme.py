"""The README's commands and snippets work as written: every fenced ``seqtutor ...`` command
parses with the real CLI, names a config that exists and settings that validate, and its
subcommand's ``--help`` runs; ``compile`` runs for real; the config and dataset snippets run on
the smoke config's artifacts."""
import re
import shlex
from pathlib import Path

import pytest

from seqtutor import config as config_lib
from seqtutor.pipeline import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def _seqtutor_commands() -> list[list[str]]:
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                if words and words[0] == "seqtutor":
                    commands.append(words[1:])
    return commands


COMMANDS = _seqtutor_commands()


def test_the_readme_has_the_commands_a_user_needs():
    subcommands = {words[0] for words in COMMANDS}
    assert {"run", "tune", "compile"} <= subcommands
    assert ["run", "melody"] in COMMANDS  # the main set-up command


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(w) for w in COMMANDS])
def test_each_readme_command_parses_and_its_config_validates(words, capsys):
    args = cli.build_parser().parse_args(words)
    config_lib.load_config(args.config, args.overrides)
    with pytest.raises(SystemExit) as exit_:
        cli.main([words[0], "--help"])
    assert exit_.value.code == 0
    assert "usage: seqtutor" in capsys.readouterr().out


def test_the_readme_compile_command_runs(tmp_path, monkeypatch):
    words = next(words for words in COMMANDS if words[0] == "compile")
    monkeypatch.chdir(tmp_path)
    assert cli.main(words) == 0
    output = Path(words[words.index("--output") + 1])
    assert output.is_file() and "pipelineInfo" in output.read_text()


def test_the_readme_config_example_extends_a_built_in_config(tmp_path):
    example = next(block for block in _blocks("yaml") if "extends:" in block)
    path = tmp_path / "mine.yaml"
    path.write_text(example)
    config = config_lib.load_config(path)
    base = config_lib.load_config("melody")
    assert config.tune.c == 1.0 and config.tune.algorithms == ["psi", "g"]
    assert config.pretrain == base.pretrain and config.name == "mine"


@pytest.mark.parametrize("marker", ["builder_from_directory", "load_split"])
def test_the_readme_dataset_snippets_load_the_prepared_data(marker, melody_smoke_prior):
    snippet = next(block for block in _blocks("python") if marker in block)
    snippet = snippet.replace("runs/melody/prepare_data",
                              str(melody_smoke_prior / "prepare_data"))
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    record = next(iter(namespace["ds"]))
    assert set(record) >= {"tokens", "source"}


def test_ci_runs_the_readmes_test_command():
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    setup = next(line for line in lines if line.startswith("apt-get update"))
    assert setup in _blocks("bash")[1], "the README's second command must be what .ci/run runs"
