"""The package's layers: one import package, and every import goes down (or stays in its place).

The rules are the table in the package docstring (``seqtutor/__init__.py``): each module's
imports are read with ``ast`` (those inside functions too) and checked against its layer.
"""

import ast
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _root_folders() -> tuple[str, ...]:
    """setup.py's ROOT_FOLDERS: the folders it maps into the package."""
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ROOT_FOLDERS":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no ROOT_FOLDERS")


# Repository folder -> the import package it installs as (setup.py's package_dir).
FOLDERS = {"seqtutor": "seqtutor", **{folder: f"seqtutor.{folder}" for folder in _root_folders()}}

# Lowest first: (layer, the module prefixes it holds).
LAYERS = (
    ("foundation", ("seqtutor.config", "seqtutor.artifacts", "seqtutor.layout",
                    "seqtutor.tfrecords", "seqtutor.corpus", "seqtutor.plugins",
                    "seqtutor.figures", "seqtutor.console", "seqtutor.statistic",
                    "seqtutor.readers", "seqtutor.sweep")),
    ("sequence model", ("seqtutor.sequence_model",)),
    ("RL", ("seqtutor.rl",)),
    ("domains", ("seqtutor.domains",)),
    ("stages", ("seqtutor.components", "seqtutor.data_prep")),
    ("top", ("seqtutor.pipeline",)),
)
MAY_IMPORT = {
    "foundation": {"foundation"},
    "sequence model": {"foundation"},
    "RL": {"foundation", "sequence model", "RL"},
    "domains": {"foundation", "domains"},
    "stages": {"foundation", "sequence model", "RL", "domains", "stages"},
    "top": {"foundation", "sequence model", "RL", "domains", "stages", "top"},
}
# The stage-to-stage imports there are: evaluate draws the report, prepare_data runs the jobs.
STAGE_USES = {"seqtutor.components.evaluate": ("seqtutor.components.report",),
              "seqtutor.components.prepare_data": ("seqtutor.data_prep",)}


def package_modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


MODULES = package_modules()


def layer_of(module: str) -> str:
    if module == "seqtutor":
        return "foundation"
    for layer, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def imports_of(path: Path, module: str):
    """(line, imported project module) for every import of ``path``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            # ``from seqtutor import layout`` imports a module; ``from x import name`` the module x.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            if name == "seqtutor" or name.startswith("seqtutor."):
                yield node.lineno, name
            elif name.split(".")[0] in FOLDERS and name.split(".")[0] != "seqtutor":
                yield node.lineno, "<outside the package> " + name


def domain_of(module: str) -> str | None:
    """``seqtutor.domains.melody.x`` -> ``melody``; the registry module itself -> None."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else None


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` must not import ``imported``, or None."""
    if imported.startswith("<outside"):
        return "imports a root folder as a top-level package: use seqtutor.<folder>"
    if imported not in MODULES:  # (``from seqtutor import __version__`` names "seqtutor")
        return "no such module in the package"
    mine, theirs = layer_of(importer), layer_of(imported)
    if theirs not in MAY_IMPORT[mine]:
        return f"the {mine} layer imports the {theirs} layer"
    if mine == theirs == "domains" and domain_of(imported) not in (None, domain_of(importer)):
        return "one domain imports another"
    allowed = STAGE_USES.get(importer, ())
    if (mine == theirs == "stages" and imported != importer
            and not any(imported == a or imported.startswith(a + ".") for a in allowed)):
        return "one stage imports another (shared code belongs in a lower layer)"
    return None


def test_every_import_goes_down_or_stays_in_its_place():
    problems = []
    for module, path in MODULES.items():
        for line, imported in imports_of(path, module):
            why = violation(module, imported)
            if why:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {imported}: "
                                f"{why}")
    assert not problems, "\n".join(problems)


def test_only_the_rl_layer_imports_tf_agents():
    problems = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "tf_agents" for n in names) and layer_of(module) != "RL":
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module}")
    assert not problems, "tf_agents imported outside seqtutor.rl:\n" + "\n".join(problems)


def test_legacy_keras_is_selected_in_one_place():
    setters = [str(path.relative_to(ROOT)) for path in MODULES.values()
               if "TF_USE_LEGACY_KERAS" in path.read_text()]
    assert setters == ["seqtutor/__init__.py"]


def test_the_checker_catches_an_upward_and_a_sideways_import():
    assert violation("seqtutor.config", "seqtutor.domains") == \
        "the foundation layer imports the domains layer"
    assert violation("seqtutor.sequence_model", "seqtutor.rl.kl_control") == \
        "the sequence model layer imports the RL layer"
    assert violation("seqtutor.domains.melody.domain", "seqtutor.domains.molecule.tokens") == \
        "one domain imports another"
    assert violation("seqtutor.components.generate", "seqtutor.components.evaluate") == \
        "one stage imports another (shared code belongs in a lower layer)"
    assert violation("seqtutor.components.tune", "seqtutor.data_prep.sequence_job") == \
        "one stage imports another (shared code belongs in a lower layer)"
    assert violation("seqtutor.domains.molecule.reader", "seqtutor.data_prep.sequence_job") == \
        "the domains layer imports the stages layer"
    assert violation("seqtutor.components.tune", "seqtutor.pipeline.runner") == \
        "the stages layer imports the top layer"
    assert violation("seqtutor.components.evaluate", "seqtutor.components.report") is None
    assert violation("seqtutor.components.prepare_data", "seqtutor.data_prep.sequence_job") is None
    assert violation("seqtutor.rl.agent", "seqtutor.rl.policy") is None
    assert violation("seqtutor.components.tune", "seqtutor.tune_agent") == \
        "no such module in the package"


def _finder_mapping(path: Path) -> dict:
    """The MAPPING of setuptools' editable finder (top-level name -> folder)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(getattr(t, "id", None) == "MAPPING" for t in targets):
                return ast.literal_eval(node.value)
    raise AssertionError(f"no MAPPING in {path}")


def installed_top_level_names() -> set[str]:
    """The import names that the installed distribution puts on sys.path, read from its
    RECORD: packages and modules in site-packages, the names an editable finder maps, and
    whatever a .pth file's folders hold."""
    # The installed distribution, not the egg-info that a build leaves in the checkout.
    installed = list(importlib.metadata.distributions(
        name="seqtutor", path=[sysconfig.get_paths()["purelib"]]))
    assert len(installed) == 1, "seqtutor is not installed (pip install -e .)"
    names = set()
    for file in installed[0].files:
        top = file.parts[0]
        if top == ".." or top == "__pycache__" or top.endswith(".dist-info"):
            continue
        if top.endswith("_finder.py") and top.startswith("__editable__"):
            names |= {name.split(".")[0] for name in _finder_mapping(Path(file.locate()))}
        elif top.endswith(".pth"):
            for line in Path(file.locate()).read_text().splitlines():
                folder = Path(line.strip())
                if line.strip() and not line.startswith("import") and folder.is_dir():
                    names |= {p.parent.name for p in folder.glob("*/__init__.py")}
                    names |= {p.stem for p in folder.glob("*.py")}
        else:
            names.add(top.removesuffix(".py"))
    return names


def test_the_distribution_installs_one_import_package():
    assert installed_top_level_names() == {"seqtutor"}


def test_importing_seqtutor_selects_keras_2_in_a_fresh_process():
    code = ("import os; import seqtutor; import tensorflow as tf; "
            "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.__name__.split('.')[0], "
            "seqtutor.__version__)")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "tf_keras", importlib.metadata.version("seqtutor")]  # Keras 2


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_is_in_a_layer(module):
    layer_of(module)


def test_the_code_version_covers_every_mapped_folder():
    from seqtutor import artifacts

    assert set(artifacts._MAPPED_SUBPACKAGES) == set(_root_folders())
