"""One control per `OptimizationConfig` field, built from the dataclass's own fields and docstrings.

Controls that cannot apply here are disabled with the reason in their tooltip and in a note under
the panel. Presets fill every control; editing any control falls back to "Custom". The optimizer's
report (precision per module, graphs, buffer pool and every fallback) is shown, never hidden.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..capabilities import PRESET_CUSTOM, PRESET_NAMES, matching_preset
from ..config_schema import ConfigSchema, FieldSpec

LABELS = {
    "enable_fp16": "FP16 decoder",
    "enable_bf16": "BF16",
    "enable_flash_attention": "SDPA attention",
    "enable_cuda_graphs": "CUDA graphs",
    "enable_fused_kernels": "Fused kernels",
    "enable_compile": "torch.compile",
    "compile_mode": "Compile mode",
    "pin_memory": "Pinned host buffers",
    "preload_weights": "Preload weights",
    "batch_preprocessing": "Batch sentences",
    "use_inference_mode": "Inference mode",
    "num_threads": "CPU threads",
    "preallocate_buffers": "Buffer pool",
    "enable_tf32": "TF32 matmul/conv",
    "shape_buckets": "Shape buckets",
    "graph_warmup_iters": "Graph warm-ups",
    "max_batch_size": "Max batch",
}

DEPENDS_ON = {
    "compile_mode": "enable_compile",
    "graph_warmup_iters": "enable_cuda_graphs",
    "max_batch_size": "batch_preprocessing",
}
"""A setting that only matters while another toggle is on."""

INT_RANGES = {"num_threads": (0, 256), "graph_warmup_iters": (1, 20), "max_batch_size": (1, 256)}


def field_label(name: str) -> str:
    return LABELS.get(name, name.removeprefix("enable_").replace("_", " ").capitalize())


class OptimizationPanel(QWidget):
    config_changed = Signal(dict)

    def __init__(self, schema: ConfigSchema, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schema = schema
        self.presets: dict[str, dict[str, Any]] = {}
        self.reasons: dict[str, str] = {}
        self.controls: dict[str, QWidget] = {}
        self.preset_box = QComboBox()
        self.preset_box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.preset_box.setMinimumContentsLength(10)
        self.preset_box.addItems(list(PRESET_NAMES))
        self.preset_box.setToolTip(
            "Unoptimized is the fp32 eager reference; Max speed turns on everything that applies here"
        )
        self.preset_box.activated.connect(self._preset_chosen)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setFixedHeight(6)
        self.busy_label = QLabel()
        self.busy_label.setObjectName("muted")
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        self.reason_label.setObjectName("reason")
        self.stats_label = QLabel()
        self.stats_label.setWordWrap(True)
        self.stats_label.setObjectName("stats")
        form = QFormLayout()
        form.addRow("Preset", self.preset_box)
        for spec in schema.fields:
            control = self._make_control(spec)
            self.controls[spec.name] = control
            if isinstance(control, QCheckBox):
                form.addRow(control)
            else:
                form.addRow(field_label(spec.name), control)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.busy_bar)
        layout.addWidget(self.busy_label)
        layout.addLayout(form)
        layout.addWidget(self.reason_label)
        layout.addWidget(self.stats_label)
        layout.addStretch(1)
        self.set_busy("")
        self._refresh_enabled()

    def _make_control(self, spec: FieldSpec) -> QWidget:
        if spec.kind == "bool":
            control = QCheckBox(field_label(spec.name))
            control.toggled.connect(self._edited)
        elif spec.kind == "choice":
            control = QComboBox()
            control.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            control.setMinimumContentsLength(8)
            control.addItems(list(spec.choices))
            control.currentTextChanged.connect(self._edited)
        else:
            low, high = INT_RANGES.get(spec.name, (0, 1_000_000))
            control = QSpinBox()
            control.setRange(low, high)
            if spec.name == "num_threads":
                control.setSpecialValueText("auto")
            control.valueChanged.connect(self._edited)
        control.setObjectName(spec.name)
        control.setToolTip(spec.doc)
        return control

    def config(self) -> dict[str, Any]:
        values = {}
        for name, control in self.controls.items():
            if isinstance(control, QCheckBox):
                values[name] = control.isChecked()
            elif isinstance(control, QComboBox):
                values[name] = control.currentText()
            else:
                values[name] = control.value()
        return values

    def set_config(self, config: dict[str, Any]) -> None:
        for name, control in self.controls.items():
            if name not in config:
                continue
            control.blockSignals(True)
            if isinstance(control, QCheckBox):
                control.setChecked(bool(config[name]) and name not in self.reasons)
            elif isinstance(control, QComboBox):
                control.setCurrentText(str(config[name]))
            else:
                control.setValue(int(config[name]))
            control.blockSignals(False)
        self._refresh_enabled()
        self._show_preset()

    def set_presets(self, presets: dict[str, dict[str, Any]]) -> None:
        self.presets = presets
        self._show_preset()

    def set_reasons(self, reasons: dict[str, str]) -> None:
        self.reasons = reasons
        for name, control in self.controls.items():
            doc = self.schema.field(name).doc
            control.setToolTip(f"{doc}\n\nUnavailable here: {reasons[name]}" if name in reasons else doc)
            if name in reasons and isinstance(control, QCheckBox):
                control.blockSignals(True)
                control.setChecked(False)
                control.blockSignals(False)
        grouped: dict[str, list[str]] = {}
        for name, reason in reasons.items():
            grouped.setdefault(reason, []).append(field_label(name))
        self.reason_label.setText(
            "\n".join(f"⊘ {', '.join(names)}: {reason}" for reason, names in grouped.items())
        )
        self.reason_label.setVisible(bool(grouped))
        self._refresh_enabled()
        self._show_preset()

    def set_busy(self, message: str) -> None:
        """A non-empty message shows the indeterminate 'optimizing…' state."""
        self.busy_bar.setVisible(bool(message))
        self.busy_label.setVisible(bool(message))
        self.busy_label.setText(message)

    def show_stats(self, stats: dict[str, Any]) -> None:
        lines = []
        precision = stats.get("precision") or {}
        if precision:
            lines.append("Precision: " + ", ".join(f"{m} {d}" for m, d in precision.items()))
        graphs = stats.get("graphs") or {}
        if graphs.get("count"):
            lines.append(f"CUDA graphs: {graphs['count']} captured in {graphs.get('capture_s', 0):.2f} s")
        model = stats.get("model") or {}
        for key, label in (("fused_kernels", "Fused kernels"), ("sdpa_backend", "SDPA backend")):
            value = model.get(key)
            if value and not str(value).startswith("off"):
                lines.append(f"{label}: {value}")
        if model.get("compile_launch"):
            compiled = model.get("compile_s") or {}
            shapes = f"{len(compiled)} shape(s) compiled in {sum(compiled.values()):.1f} s, " if compiled else ""
            lines.append(f"torch.compile: {shapes}{model['compile_launch']}")
        pool = stats.get("pool") or {}
        if pool.get("hits") or pool.get("misses"):
            lines.append(f"Buffer pool: {pool.get('hits', 0)} hits, {pool.get('misses', 0)} misses")
        if "optimize_s" in stats:
            lines.append(f"Optimized in {stats['optimize_s']:.2f} s")
        fallbacks = stats.get("fallbacks") or []
        lines.extend(f"⚠ {text}" for text in fallbacks)
        self.stats_label.setText("\n".join(lines))
        self.stats_label.setProperty("warning", bool(fallbacks))
        self.stats_label.style().unpolish(self.stats_label)
        self.stats_label.style().polish(self.stats_label)

    def _preset_chosen(self, index: int) -> None:
        name = self.preset_box.itemText(index)
        if name in self.presets:
            self.set_config(self.presets[name])
            self.config_changed.emit(self.config())

    def _edited(self, *_args) -> None:
        self._refresh_enabled()
        self._show_preset()
        self.config_changed.emit(self.config())

    def _show_preset(self) -> None:
        name = matching_preset(self.config(), self.presets) if self.presets else PRESET_CUSTOM
        self.preset_box.blockSignals(True)
        self.preset_box.setCurrentText(name)
        self.preset_box.blockSignals(False)
        for i in range(self.preset_box.count()):
            text = self.preset_box.itemText(i)
            self.preset_box.model().item(i).setEnabled(text == PRESET_CUSTOM or text in self.presets)

    def _refresh_enabled(self) -> None:
        for name, control in self.controls.items():
            control.setEnabled(name not in self.reasons)
        for name, switch in DEPENDS_ON.items():
            if name in self.controls and switch in self.controls:
                switch_on = self.controls[switch].isChecked() and switch not in self.reasons
                self.controls[name].setEnabled(switch_on and name not in self.reasons)
