"""Build step that ships `sql/` and the example config inside the wheel.

The SQL stays at the repository root (`sql/<layer>/<name>.sql`, where people look for it), but an
installed package has no repository root: this copies every `.sql` file into
`pipeline/_sql/` of the built package, where `pipeline.sql` finds it when there is no
checkout next to it, and `examples/acme/ledger.yaml` (the default config of `demo`,
`simulate` and `scenarios`) into `byok_ledger/_examples/acme/`. Everything else about the
build is declared in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


# (source folder at the repo root, file pattern, target folder inside the built package)
DATA = (
    ("sql", "*.sql", "pipeline/_sql"),
    ("examples/acme", "ledger.yaml", "byok_ledger/_examples/acme"),
)


class BuildPyWithSql(build_py):
    """`build_py` plus copies of the repository-root data the package reads at run time."""

    def run(self) -> None:
        super().run()
        for folder, pattern, into in DATA:
            source = ROOT / folder
            target = Path(self.build_lib) / into
            if target.exists():
                shutil.rmtree(target)
            for path in sorted(source.rglob(pattern)):
                dest = target / path.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)


setup(cmdclass={"build_py": BuildPyWithSql})
