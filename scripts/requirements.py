"""Print setup.py's INSTALL_REQUIRES, one per line, without running setup.py.

The Dockerfile installs these in a layer of their own before it copies the code, so a change of
code rebuilds only the small layer that installs the package (the pins stay in setup.py alone).

    python scripts/requirements.py [setup.py]
"""

import ast
import sys


def install_requires(setup_source: str) -> list[str]:
    for node in ast.parse(setup_source).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "INSTALL_REQUIRES"):
            return list(ast.literal_eval(node.value))
    raise SystemExit("requirements.py: setup.py has no INSTALL_REQUIRES list")


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "setup.py"
    with open(path, encoding="utf-8") as file:
        print("\n".join(install_requires(file.read())))
