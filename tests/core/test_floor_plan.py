"""The floor plan (DESIGN.md "Who may import whom", issue 14), checked on the source: models hold
modules only, pipelines compose them, the training loop sits under the pipelines, shared
helpers live in core; and no file in nar/ grows past 500 lines."""
import ast
from pathlib import Path

import pytest

NAR = Path(__file__).resolve().parents[2] / "nar"
MAX_LINES = 500

# package -> packages it must never import (function-local imports included)
FORBIDDEN = {
    "tokenizer": ("nar.pipelines", "nar.train", "nar.cli", "nar.data", "nar.serve", "nar.eval", "nar.priors"),
    "priors": ("nar.pipelines", "nar.train", "nar.cli", "nar.data", "nar.serve", "nar.eval", "nar.tokenizer"),
    "sr": ("nar.pipelines", "nar.train", "nar.cli", "nar.data", "nar.serve"),
    "nn": ("nar.pipelines", "nar.train", "nar.cli", "nar.data", "nar.serve", "nar.priors", "nar.tokenizer",
           "nar.sr", "nar.eval"),
    "sampling": ("nar.pipelines", "nar.train", "nar.cli", "nar.data", "nar.serve", "nar.priors", "nar.tokenizer"),
    "eval": ("nar.train", "nar.pipelines", "nar.cli", "nar.serve"),
    "train": ("nar.pipelines", "nar.cli", "nar.serve"),
    "data": ("nar.pipelines", "nar.train", "nar.cli", "nar.serve", "nar.priors", "nar.tokenizer"),
    "core": ("nar.pipelines", "nar.train", "nar.cli", "nar.serve", "nar.priors", "nar.tokenizer", "nar.data",
             "nar.eval", "nar.nn", "nar.sampling", "nar.sr"),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (function-local imports count too)."""
    package = ".".join(path.relative_to(NAR.parent).with_suffix("").parts[:-1])
    return modules_in(path.read_text(), package)


def modules_in(source: str, package: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                parts = package.split(".")
                module = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _files(package: str) -> list[Path]:
    return sorted((NAR / package).rglob("*.py")) if (NAR / package).is_dir() else []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_rules(package):
    broken = []
    for path in _files(package):
        for line, module in imported_modules(path):
            for banned in FORBIDDEN[package]:
                if module == banned or module.startswith(banned + "."):
                    broken.append(f"{path.relative_to(NAR.parent)}:{line} imports {module}")
    assert not broken, f"nar/{package} breaks the floor plan:\n" + "\n".join(broken)


def test_the_rules_see_function_local_and_relative_imports():
    source = "import torch\n\ndef f():\n    from nar.train.loop import train\n    from ..data import tokens\n"
    modules = [m for _, m in modules_in(source, "nar.tokenizer")]
    assert "nar.train.loop" in modules and "nar.data.tokens" in modules


def test_no_file_in_nar_is_over_500_lines():
    long = [f"{p.relative_to(NAR.parent)}: {n} lines" for p in sorted(NAR.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, "split these files:\n" + "\n".join(long)
