"""Compare mode: the same text under config A and B, × real time and VRAM side by side, both playable."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..metrics import RunRecord, format_bytes
from .plots import empty_hint, styled_plot

CURRENT = "Current settings"
COLORS = {"A": "#8a93a3", "B": "#4cc2ff"}


class CompareView(QWidget):
    compare_requested = Signal(str, str)
    """(preset name or 'Current settings' for A, same for B)"""
    play_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.choice = {"A": QComboBox(), "B": QComboBox()}
        self.run_button = QPushButton("Run comparison")
        self.run_button.setObjectName("primary")
        self.run_button.clicked.connect(
            lambda: self.compare_requested.emit(self.choice["A"].currentText(), self.choice["B"].currentText())
        )
        self.speed_plot = styled_plot("× real time (higher is faster)", "× real time", "")
        self.memory_plot = styled_plot("VRAM peak", "MiB", "")
        self.speed_bars = pg.BarGraphItem(x=[0, 1], height=[0, 0], width=0.6, brushes=[COLORS["A"], COLORS["B"]])
        self.memory_bars = pg.BarGraphItem(x=[0, 1], height=[0, 0], width=0.6, brushes=[COLORS["A"], COLORS["B"]])
        self.speed_plot.addItem(self.speed_bars)
        self.memory_plot.addItem(self.memory_bars)
        for plot in (self.speed_plot, self.memory_plot):
            plot.getAxis("bottom").setTicks([[(0, "A"), (1, "B")]])
            plot.setXRange(-0.6, 1.6, padding=0)
        self.speed_labels = [self._bar_label(self.speed_plot, x) for x in (0, 1)]
        self.memory_labels = [self._bar_label(self.memory_plot, x) for x in (0, 1)]
        self.speed_hint = empty_hint(self.speed_plot, "Pick A and B, then Run comparison")
        self.memory_hint = empty_hint(self.memory_plot, "")
        self.summary = {"A": QLabel(), "B": QLabel()}
        self.play = {"A": QPushButton("▶ Play A"), "B": QPushButton("▶ Play B")}
        self.speedup = QLabel()
        self.speedup.setObjectName("headline")
        self.runs: dict[str, RunRecord] = {}
        for side in "AB":
            self.summary[side].setObjectName("muted")
            self.summary[side].setWordWrap(True)
            self.play[side].setEnabled(False)
            self.play[side].clicked.connect(lambda _=False, s=side: self._play(s))
        self._layout()

    def _layout(self) -> None:
        pickers = QHBoxLayout()
        for side in "AB":
            tag = QLabel(side)
            tag.setObjectName(f"tag{side}")
            pickers.addWidget(tag)
            pickers.addWidget(self.choice[side], 1)
        pickers.addWidget(self.run_button)
        plots = QHBoxLayout()
        plots.addWidget(self.speed_plot, 3)
        plots.addWidget(self.memory_plot, 2)
        details = QGridLayout()
        for column, side in enumerate("AB"):
            details.addWidget(self.summary[side], 0, column)
            details.addWidget(self.play[side], 1, column)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(pickers)
        layout.addWidget(self.speedup)
        layout.addLayout(plots, 1)
        layout.addLayout(details)

    @staticmethod
    def _bar_label(plot: pg.PlotWidget, x: float) -> pg.TextItem:
        label = pg.TextItem("", color="#e6e8ec", anchor=(0.5, 1.0))
        plot.addItem(label, ignoreBounds=True)
        label.setPos(x, 0)
        return label

    def set_choices(self, names: list[str], a: str, b: str) -> None:
        for side, default in (("A", a), ("B", b)):
            box = self.choice[side]
            current = box.currentText() or default
            box.clear()
            box.addItems([*names, CURRENT])
            box.setCurrentText(current if current in (*names, CURRENT) else default)

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        if running:
            self.speedup.setText("Running A, then B (each re-optimizes first)…")

    def show_results(self, a: RunRecord, b: RunRecord) -> None:
        self.runs = {"A": a, "B": b}
        speeds = [a.x_realtime, b.x_realtime]
        peaks = [a.peak_vram_bytes / 2**20, b.peak_vram_bytes / 2**20]
        self.speed_bars.setOpts(height=speeds)
        self.memory_bars.setOpts(height=peaks)
        self.speed_plot.setYRange(0, max(max(speeds), 1e-3) * 1.15, padding=0)
        self.memory_plot.setYRange(0, max(max(peaks), 1.0) * 1.15, padding=0)
        for x, (speed, peak) in enumerate(zip(speeds, peaks, strict=True)):
            self.speed_labels[x].setText(f"{speed:.1f}×")
            self.speed_labels[x].setPos(x, speed)
            self.memory_labels[x].setText(f"{peak:.0f} MiB" if peak else "")
            self.memory_labels[x].setPos(x, peak)
        self.speed_hint.setVisible(False)
        gpu = any(peaks)
        self.memory_hint.setText("" if gpu else "CPU runs: no VRAM")
        self.memory_hint.setPos(0.5, 0.5)
        for side, run in self.runs.items():
            self.summary[side].setText(
                f"<b>{side}: {run.config_summary}</b><br>{run.x_realtime:.1f}× real time · RTF {run.rtf:.4f}"
                f" · first audio {run.timings.get('first_audio_s', 0.0) * 1000:.0f} ms<br>"
                f"{run.audio_s:.2f} s audio on {run.device} · VRAM peak "
                f"{format_bytes(run.peak_vram_bytes) if run.peak_vram_bytes else '— (CPU)'}"
            )
            self.play[side].setEnabled(True)
        ratio = b.x_realtime / a.x_realtime if a.x_realtime else float("nan")
        self.speedup.setText(f"B is {ratio:.2f}× the speed of A" if np.isfinite(ratio) else "")
        self.set_running(False)

    def _play(self, side: str) -> None:
        if side in self.runs:
            self.play_requested.emit(self.runs[side].run_id)
