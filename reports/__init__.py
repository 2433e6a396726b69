"""Finance reports (docs/reports-alerts.md): self-contained HTML per month and a rolling last-N-days view,
rendered from the marts. `render_month(config, "2026-11")` and `render_last_days(config)`
return the written file's path; `byok-ledger report` is `reports.cli:report`."""

from reports.data import ReportError
from reports.render import render_last_days, render_month

__all__ = ["ReportError", "render_last_days", "render_month"]
