"""Live pyqtgraph plots: × real time per run, memory over time, and the last run's stage timings.

Slots only append into `LiveMetrics`' preallocated ring buffers; `refresh()` runs on the window's
single display timer and redraws only what changed, handing pyqtgraph views of those buffers.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..metrics import PALETTE, LiveMetrics

BACKGROUND = "#17181c"
FOREGROUND = "#aeb4bf"
GRID_ALPHA = 0.12
MIB = 1024 * 1024


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(antialias=True, background=BACKGROUND, foreground=FOREGROUND)


def styled_plot(title: str, left: str, bottom: str) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setTitle(title, color="#e6e8ec", size="10pt")
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    plot.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)  # "seconds (x0.001)" reads worse than plain numbers
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    return plot


def empty_hint(plot: pg.PlotWidget, text: str) -> pg.TextItem:
    """Centred grey text shown while a plot has no data yet."""
    hint = pg.TextItem(text, color="#5d626d", anchor=(0.5, 0.5))
    plot.addItem(hint, ignoreBounds=True)
    hint.setPos(0.5, 0.5)
    return hint


class LivePlots(QWidget):
    def __init__(self, metrics: LiveMetrics, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metrics = metrics
        self.speed_plot = styled_plot("Speed per synthesis", "× real time", "run")
        self.speed_line = self.speed_plot.plot(pen=pg.mkPen("#3a3f4b", width=1), skipFiniteCheck=True)
        self.speed_points = pg.ScatterPlotItem(size=9, pen=pg.mkPen("#101114", width=1))
        self.speed_plot.addItem(self.speed_points)
        self.legend = QLabel()
        self.legend.setObjectName("legend")
        self.legend.setTextFormat(Qt.RichText)
        self.memory_plot = styled_plot("Memory (sampled 10×/s)", "MiB", "seconds")
        self.memory_plot.addLegend(offset=(8, 4), labelTextColor=FOREGROUND, brush=pg.mkBrush(23, 24, 28, 200))
        self.curves = {
            "allocated": self.memory_plot.plot(pen=pg.mkPen("#4cc2ff", width=2), name="VRAM allocated"),
            "reserved": self.memory_plot.plot(pen=pg.mkPen("#ff9f43", width=2), name="VRAM reserved"),
            "rss": self.memory_plot.plot(
                pen=pg.mkPen("#8a93a3", width=1, style=Qt.DashLine), name="process RAM (RSS)"
            ),
        }
        for curve in self.curves.values():
            curve.setSkipFiniteCheck(True)
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
        self.stage_plot = styled_plot("Stages of the last run", "", "milliseconds")
        self.stage_bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.6, brush="#4cc2ff")
        self.stage_plot.addItem(self.stage_bars)
        self.stage_plot.invertY(True)
        self.speed_hint = empty_hint(self.speed_plot, "Press Speak: every run adds a point")
        self.stage_hint = empty_hint(self.stage_plot, "Per-stage timings of the last run")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.speed_plot, 3)
        layout.addWidget(self.legend)
        layout.addWidget(self.memory_plot, 3)
        layout.addWidget(self.stage_plot, 2)

    def refresh(self, dirty: set[str]) -> None:
        if "runs" in dirty:
            self._draw_runs()
        if "memory" in dirty:
            self._draw_memory()
        if "stages" in dirty:
            self._draw_stages()

    def set_gpu_run(self, gpu: bool) -> None:
        """On CPU runs VRAM is zero by definition; say so instead of showing two flat lines unexplained."""
        title = "Memory (sampled 10×/s)" if gpu else "Memory (sampled 10×/s) · CPU run: no VRAM in use"
        if self.memory_plot.plotItem.titleLabel.text != title:
            self.memory_plot.setTitle(title, color="#e6e8ec", size="10pt")

    def _draw_runs(self) -> None:
        runs = self.metrics.runs.view()
        self.speed_hint.setVisible(not len(runs))
        if not len(runs):
            self.speed_line.setData([], [])
            self.speed_points.setData([], [])
            self.legend.setText("")
            return
        self.speed_line.setData(runs[:, 0], runs[:, 1])
        self.speed_plot.setYRange(0, max(float(runs[:, 1].max()), 1e-3) * 1.15, padding=0)  # honest: from zero
        brushes = [pg.mkBrush(PALETTE[int(i)]) for i in runs[:, 2]]
        self.speed_points.setData(x=runs[:, 0], y=runs[:, 1], brush=brushes)
        self.legend.setText(
            "  ".join(
                f"<span style='color:{color}'>●</span> {summary}" for summary, color in self.metrics.palette.items()
            )
        )

    def _draw_memory(self) -> None:
        data = self.metrics.memory.view()
        if not len(data):
            return
        t = data[:, 0]
        self.curves["allocated"].setData(t, data[:, 1] / MIB)
        self.curves["reserved"].setData(t, data[:, 2] / MIB)
        self.curves["rss"].setData(t, data[:, 3] / MIB)

    def _draw_stages(self) -> None:
        stages = self.metrics.last_stages
        names = list(stages)
        self.stage_hint.setVisible(not names)
        millis = np.array([stages[n] * 1000.0 for n in names])
        self.stage_bars.setOpts(x0=np.zeros(len(names)), y=np.arange(len(names)), width=millis, height=0.6)
        self.stage_plot.getAxis("left").setTicks([list(enumerate(names))])
        if names:
            self.stage_plot.setYRange(-0.6, len(names) - 0.4, padding=0)
            self.stage_plot.setXRange(0, max(float(millis.max()), 1e-3) * 1.1, padding=0)
