import numpy as np

from app.metrics import LiveMetrics, RunHistory, RunRecord, format_bytes, ordered_stages


def _record(run_id, summary="fp32 eager", rtf=0.5):
    return RunRecord(
        run_id=run_id,
        started=0.0,
        text="Hello world, this is a long sentence that will be shortened.",
        voice="default",
        config_summary=summary,
        preset="Custom",
        device="cpu",
        audio=np.zeros(22050, np.float32),
        sample_rate=22050,
        timings={"rtf": rtf, "stages": {"decoder": 0.3, "phonemize": 0.01, "custom": 0.1}},
    )


def test_record_derives_audio_seconds_and_speed():
    record = _record(1, rtf=0.25)
    assert record.audio_s == 1.0
    assert record.x_realtime == 4.0
    assert record.text_start(12) == "Hello world…"


def test_history_is_bounded_and_clearable():
    history = RunHistory(max_runs=3)
    for _ in range(5):
        history.add(_record(history.next_id()))
    assert [r.run_id for r in history] == [3, 4, 5]
    assert history.get(1) is None and history.get(4).run_id == 4
    history.clear()
    assert len(history) == 0


def test_live_metrics_mark_dirty_once_per_redraw_and_colour_by_config():
    metrics = LiveMetrics(memory_points=4)
    for t in range(6):
        metrics.add_memory(metrics._t0 + t, {"allocated": t, "reserved": 2 * t, "rss": 7})
    metrics.add_run(_record(1, "fp32 eager"))
    metrics.add_run(_record(2, "fp16+graphs"))
    metrics.add_run(_record(3, "fp32 eager"))
    assert metrics.take_dirty() == {"memory", "runs", "stages"}
    assert metrics.take_dirty() == set()
    np.testing.assert_array_equal(metrics.memory.view()[:, 1], [2, 3, 4, 5])
    np.testing.assert_array_equal(metrics.runs.view()[:, 2], [0, 1, 0])
    assert list(metrics.last_stages) == ["phonemize", "decoder", "custom"]


def test_helpers():
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 1024 * 1024) == "3.0 MiB"
    assert list(ordered_stages({"copy": 1, "encoder": 2})) == ["encoder", "copy"]
