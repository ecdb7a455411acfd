"""Packaging hook: the recipes in configs/ ship inside the wheel as nar/recipes/.

configs/ stays the one source (README, scripts and tests use its paths); `nar.core.recipes`
reads nar/recipes/ when installed from a wheel and configs/ in a checkout. Everything else
is declared in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIGS = Path(__file__).resolve().parent / "configs"


class BuildPyWithRecipes(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "nar" / "recipes"
        for src in sorted(CONFIGS.glob("*/*.toml")):
            dst = target / src.relative_to(CONFIGS)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


setup(cmdclass={"build_py": BuildPyWithRecipes})
