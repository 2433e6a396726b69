"""The CLI's last net: an unexpected exception is one line naming the error and where, exit 1,
never a traceback; BYOK_LEDGER_DEBUG=1 re-raises it for a developer."""

from __future__ import annotations

import sys
import types

import pytest

from byok_ledger import cli


@pytest.fixture
def exploding_check_config(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("_exploding_handler")

    def handler(args: object) -> int:
        raise RuntimeError("boom at depth")

    mod.handler = handler  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_exploding_handler", mod)
    monkeypatch.setitem(cli.HANDLERS, "check-config", "_exploding_handler:handler")


def test_unexpected_error_is_one_line_and_exit_1(exploding_check_config, capsys, monkeypatch):
    monkeypatch.delenv("BYOK_LEDGER_DEBUG", raising=False)
    assert cli.main(["check-config", "whatever.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "unexpected error: RuntimeError: boom at depth" in err
    assert "test_cli_last_net.py:" in err and "Traceback" not in err


def test_debug_env_shows_the_traceback(exploding_check_config, monkeypatch):
    monkeypatch.setenv("BYOK_LEDGER_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom at depth"):
        cli.main(["check-config", "whatever.yaml"])
