"""The benchmark harness on the CPU: what it writes, and what a run cut short leaves behind."""

from __future__ import annotations

import argparse
import json

import pytest

from engine import bench


def bench_args(tmp_path, **overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--device", "cpu", "--texts", "short", "--no-peer", "--no-progress", "--iters", "2", "--warmup", "0", "--out", str(tmp_path / "out")])
    vars(args).update(overrides)
    return args


@pytest.fixture
def joe_loaded(monkeypatch, joe_cpu):
    monkeypatch.setattr("engine.registry.load_model", lambda voice, device: joe_cpu)


def test_a_finished_run_writes_every_cell_with_its_parity_against_eager(tmp_path, joe_loaded):
    assert bench.run_from_args(bench_args(tmp_path, configs="eager_fp32,bf16")) == 0
    written = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert written["complete"] is True
    eager, bf16 = written["cells"]
    assert (eager["config"], bf16["config"]) == ("eager_fp32", "bf16")
    assert eager["text"] == "short" and eager["audio_s"] > 0.5
    assert bf16["same_length"] is True and bf16["snr_db"] > 10
    assert eager["compile_by_shape"] == {} and eager["compile_s"] == 0, "nothing compiled: the setup split is empty"
    assert 0 < eager["front_end_s"] <= eager["median_s"], "a short text: one espeak call inside each timed call"
    assert eager["front_end_waited_s"] == pytest.approx(eager["front_end_s"], rel=0.5), "nothing overlaps a short text's front end"
    assert "partial" not in (tmp_path / "out" / "bench.md").read_text()


def test_a_run_cut_short_keeps_the_cells_it_measured(tmp_path, joe_loaded, monkeypatch):
    measure = bench.run_cell

    def cut_after_the_first(model, name, *rest):
        if name != "eager_fp32":
            raise KeyboardInterrupt  # a time limit or Ctrl+C in the middle of the second config
        return measure(model, name, *rest)

    monkeypatch.setattr(bench, "run_cell", cut_after_the_first)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "bench.png").write_bytes(b"an earlier run's chart")
    with pytest.raises(KeyboardInterrupt):
        bench.run_from_args(bench_args(tmp_path, configs="eager_fp32,bf16"))
    written = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert written["complete"] is False
    assert [c["config"] for c in written["cells"]] == ["eager_fp32"]
    assert written["cells"][0]["median_s"] > 0
    assert "partial" in (tmp_path / "out" / "bench.md").read_text()
    assert not (tmp_path / "out" / "bench.png").exists()
