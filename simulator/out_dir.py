"""The output folder of `byok-ledger simulate` and `byok-ledger demo`: it must be new, empty,
or one these commands made before. Re-running into a folder they made replaces only what they
wrote there; a folder holding anything else is refused before anything is touched, so no
command deletes data it did not create.

A folder they made carries a marker file (`MARKER`). Only the names in `OWNED` may sit beside
it: what the simulator writes (config copy, logs, invoices, ground truth) and what the pipeline,
the Dagster instance and the reports derive from it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

MARKER = ".byok-ledger-output"
# Top-level names a simulate/demo folder may hold. Only REPLACED ones are removed on a re-run:
# the rest (reports, Dagster history) is kept and overwritten or appended to by its owner.
REPLACED = ("logs", "invoices", "ground_truth.json", "ledger.duckdb", "ledger.duckdb.wal")
OWNED = frozenset((MARKER, "ledger.yaml", "reports", ".dagster", "exports", *REPLACED))


class OutDirError(ValueError):
    """The output folder cannot be used; the message says why and what to do."""


def _describe(names: list[str]) -> str:
    shown = ", ".join(names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def prepare_out_dir(out_dir: str | Path, command: str = "simulate") -> Path:
    """Resolve `out_dir`, refuse it if it holds anything a previous run did not create, remove
    what a previous run replaced, and mark it. Returns the absolute folder."""
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise OutDirError(f"--out {out_dir}: {out} is a file, not a folder")
    if out.is_dir():
        names = sorted(p.name for p in out.iterdir())
        if names and MARKER not in names:
            raise OutDirError(
                f"--out {out}: the folder is not empty ({_describe(names)}) and was not made by "
                f"byok-ledger {command}; it never deletes data it did not create. Choose a new "
                "or empty folder (e.g. --out demo-out-2), or empty this one yourself."
            )
        foreign = [n for n in names if n not in OWNED]
        if foreign:
            raise OutDirError(
                f"--out {out}: the folder holds files byok-ledger did not create "
                f"({_describe(foreign)}); move them elsewhere or choose a new folder."
            )
        for name in REPLACED:
            p = out / name
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(
        json.dumps({"made_by": f"byok-ledger {command}", "replaced_on_rerun": list(REPLACED)})
        + "\n",
        encoding="utf-8",
    )
    return out
