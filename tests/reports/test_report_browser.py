"""The finance report in a real headless Chromium (Debian's package): it renders, the inline
script runs without error, the page text holds the headline numbers, and a screenshot is
taken. A missing Chromium FAILS these tests (never skips): install it."""

from __future__ import annotations

import re

import pytest
from browserkit import RENDERED, run_chromium, script_errors

from reports.render import render_month

from .conftest import EVIL_MODEL

pytestmark = pytest.mark.browser


def test_report_renders_in_chromium(report_env, tmp_path):
    page = render_month(report_env, "2026-11")
    dom = run_chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert script_errors(dom.stderr) == []
    html = dom.stdout
    # The inline script ran (it only sets this text if nothing before it failed).
    assert RENDERED.search(html)
    text = re.sub(r"<[^>]+>", " ", html)
    for number in ("$102.00", "$5.00", "$50.00", "$157.00", "+1.3% per day"):
        assert number in text, number
    # The hostile model name is text in the live DOM, not an element.
    assert '&lt;script&gt;alert("model")&lt;/script&gt;' in html
    assert len(re.findall(r"<script\b", html)) == 1
    assert EVIL_MODEL not in html

    shot = tmp_path / "report.png"
    res = run_chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1280,4000")
    assert res.returncode == 0, res.stderr[-2000:]
    assert script_errors(res.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a real, non-blank page

    # Print: the @media print layout produces a multi-page A4 document.
    pdf = tmp_path / "report.pdf"
    res = run_chromium(tmp_path, page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert res.returncode == 0, res.stderr[-2000:]
    doc = pdf.read_bytes()
    assert doc.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", doc)) >= 3


def test_script_error_detection_works(tmp_path):
    """The check above would catch a broken page: a thrown error shows up as 'Uncaught'."""
    page = tmp_path / "broken.html"
    good = '<!doctype html><p id="render-check">render-check: waiting</p><script>{}' + (
        'document.getElementById("render-check").textContent = ["render-check", "ok"].join(": ");'
        "</script>"
    )
    page.write_text(good.format(""))
    res = run_chromium(tmp_path, page, "--dump-dom")
    assert RENDERED.search(res.stdout) and script_errors(res.stderr) == []
    page.write_text(good.format("undefinedFunction();"))
    res = run_chromium(tmp_path, page, "--dump-dom")
    assert not RENDERED.search(res.stdout)
    assert script_errors(res.stderr), res.stderr[-2000:]
