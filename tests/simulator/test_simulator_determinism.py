"""Same seed, same bytes: every file a simulation writes is identical across two runs (router
engine and synthesizer), and a different seed changes the traffic."""

from __future__ import annotations

from pathlib import Path

from simulator_testkit import small_run


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_router_engine_is_byte_identical_for_a_seed(tmp_path):
    a = small_run(tmp_path / "a", days=2, requests_per_day=40, engine="router")
    b = small_run(tmp_path / "b", days=2, requests_per_day=40, engine="router")
    ta, tb = _tree(a.out_dir), _tree(b.out_dir)
    assert sorted(ta) == sorted(tb)
    diff = [k for k in ta if ta[k] != tb[k]]
    assert diff == []
    assert any(k.startswith("logs/requests/") for k in ta)
    assert any(k.startswith("invoices/") for k in ta)


def test_synth_engine_is_byte_identical_for_a_seed(tmp_path):
    a = small_run(tmp_path / "a", days=2, requests_per_day=300, engine="synth")
    b = small_run(tmp_path / "b", days=2, requests_per_day=300, engine="synth")
    ta, tb = _tree(a.out_dir), _tree(b.out_dir)
    assert ta.keys() == tb.keys()
    assert [k for k in ta if ta[k] != tb[k]] == []


def test_another_seed_changes_the_logs(tmp_path):
    a = small_run(tmp_path / "a", days=1, requests_per_day=40, engine="router", seed=1)
    b = small_run(tmp_path / "b", days=1, requests_per_day=40, engine="router", seed=2)
    la = sorted((a.logs_dir / "requests").rglob("*.jsonl"))
    lb = sorted((b.logs_dir / "requests").rglob("*.jsonl"))
    assert [p.read_bytes() for p in la] != [p.read_bytes() for p in lb]


def test_rerun_into_the_same_folder_replaces_the_previous_run(tmp_path):
    first = small_run(tmp_path / "x", days=1, requests_per_day=40, engine="router", seed=3)
    before = _tree(first.out_dir)
    small_run(tmp_path / "x", days=1, requests_per_day=40, engine="router", seed=4)
    again = small_run(tmp_path / "x", days=1, requests_per_day=40, engine="router", seed=3)
    assert _tree(again.out_dir) == before  # nothing of seed 4 left behind
