"""Dagster code location: every asset, check, job and schedule under `pipeline/defs/`."""

import warnings
from pathlib import Path

import dagster as dg

_HERE = Path(__file__).parent


def _in_dg_project() -> bool:
    """A checkout: some parent folder has the project's dg config (pyproject.toml [tool.dg])."""
    for folder in (_HERE, *_HERE.parents):
        if (folder / "dg.toml").is_file():
            return True
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.dg" in pyproject.read_text(encoding="utf-8"):
            return True
    return False


if _in_dg_project():
    defs = dg.load_from_defs_folder(path_within_project=_HERE)
else:
    # An installed wheel has no pyproject.toml to find the defs folder from: load the same
    # `pipeline.defs` module directly (the older entry point, same result).
    import pipeline.defs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        defs = dg.load_defs(defs_root=pipeline.defs, project_root=_HERE.parent)
