"""Build step that ships `sql/` inside the wheel.

The SQL stays at the repository root (`sql/<layer>/<name>.sql`, where people look for it), but an
installed package has no repository root: this copies every `.sql` file into
`pipeline/_sql/` of the built package, where `pipeline.sql` finds it when there is no
checkout next to it. Everything else about the build is declared in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithSql(build_py):
    """`build_py` plus a copy of `sql/**/*.sql` into `pipeline/_sql/`."""

    def run(self) -> None:
        super().run()
        source = ROOT / "sql"
        target = Path(self.build_lib) / "pipeline" / "_sql"
        if target.exists():
            shutil.rmtree(target)
        for path in sorted(source.rglob("*.sql")):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


setup(cmdclass={"build_py": BuildPyWithSql})
