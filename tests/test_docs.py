"""The repository is self-contained: no file points outside it, and every path or link it names
exists. A clone is all a reader has, so a reference to a file elsewhere on the author's machine,
or to one that was renamed, is a broken promise."""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {".git", ".venv", "runs", "build", "dist", "__pycache__", ".pytest_cache"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".ini", ".txt", ".cfg", ".sh", ""}

# A path that climbs with ../ (in prose, code, a shell line or a link).
PARENT_PATH = re.compile(r"(?:\.\./)+[\w.\-/]*")
# A repository path named in prose or a comment: one of the project's folders, then a file.
REPO_PATH = re.compile(
    r"(?<![\w./\-])((?:docs|configs|benchmarks|tests|components|pipeline|data_prep|domains|"
    r"seqtutor|spec)/[\w./\-]*\.(?:md|py|yaml))\b")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# An absolute path on the author's machine (a container's own paths, such as /opt, are fine).
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:work|root|home)/[\w.\-/]+")


def _repository_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [ROOT / name for name in listed.splitlines()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist)
        files = [path for path in ROOT.rglob("*") if path.is_file()]
    return sorted(path for path in files
                  if path.is_file() and path.suffix in TEXT_SUFFIXES
                  and not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
                  and "egg-info" not in str(path))


def _text_files() -> list[tuple[Path, str]]:
    texts = []
    for path in _repository_files():
        try:
            texts.append((path, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:  # a binary test fixture
            continue
    return texts


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _inside(path: Path) -> bool:
    return path.resolve() == ROOT or ROOT in path.resolve().parents


def _heading_slugs(markdown: str) -> set[str]:
    """GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped)."""
    slugs = set()
    for heading in re.findall(r"^#+\s+(.*)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def _matches_failing(pattern: re.Pattern, broken) -> list[str]:
    """``file:line: text`` of each match of ``pattern`` in the repository's files (this one
    aside) for which ``broken(file, match)`` holds."""
    this_file = Path(__file__).resolve()
    return [f"{path.relative_to(ROOT)}:{_line(text, match.start())}: {match.group(0)}"
            for path, text in _text_files() if path != this_file
            for match in pattern.finditer(text) if broken(path, match)]


def test_no_file_points_outside_the_repository():
    def leaves_or_missing(path, match):
        target = (path.parent / match.group(0)).resolve()
        return not _inside(target) or not target.exists()

    problems = _matches_failing(PARENT_PATH, leaves_or_missing)
    assert not problems, "leave the repository or do not exist:\n" + "\n".join(problems)


def test_no_file_names_a_path_on_the_authors_machine():
    problems = _matches_failing(MACHINE_PATH, lambda path, match: True)
    assert not problems, "\n".join(problems)


def test_every_repository_path_named_in_a_file_exists():
    def missing(path, match):
        name = match.group(1)
        return not ((ROOT / name).exists() or (path.parent / name).exists())

    problems = _matches_failing(REPO_PATH, missing)
    assert not problems, "do not exist:\n" + "\n".join(problems)


def test_every_relative_markdown_link_resolves():
    problems = []
    for path, text in _text_files():
        if path.suffix != ".md":
            continue
        for match in MARKDOWN_LINK.finditer(text):
            link = match.group(1)
            if re.match(r"^[a-z]+:", link):  # https:, mailto:
                continue
            target, _, anchor = link.partition("#")
            where = f"{path.relative_to(ROOT)}:{_line(text, match.start())}: {link}"
            file = (path.parent / target).resolve() if target else path
            if not _inside(file) or not file.exists():
                problems.append(f"{where}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in _heading_slugs(
                    file.read_text(encoding="utf-8")):
                problems.append(f"{where}: no heading with that anchor")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("text, found", [
    ("see ../elsewhere/spec.md", True),
    ("cd \"$(dirname \"$0\")/..\"", False),
    ("from ..rl import agent", False),
])
def test_the_parent_path_pattern(text, found):
    assert bool(PARENT_PATH.search(text)) == found


@pytest.mark.parametrize("text, found", [
    ("python /work/main/tools/x.py", True), ("WORKDIR /opt/seqtutor", False),
    ("runs/work/x", False), ("~/home/x", False),
])
def test_the_machine_path_pattern(text, found):
    assert bool(MACHINE_PATH.search(text)) == found
