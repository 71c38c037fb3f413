"""The "Semantic (DMN style)" slider group: boundaries in the DMN's own style space.

Works with the shipped models alone: one slider per DMN style boundary (in units of the training
codes' standard deviation along it, ±3), a conditional-manipulation toggle (on by default: each
edit keeps the other attributes' linear predictions fixed), the per-region styles chosen from
the gallery (one row per region, with a button to drop it), and Load / Export of style latents.
The widget holds values only; the main window turns them into render requests.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget,
)

from maskstudio.ui.icons import themed
from maskstudio.ui.sliders_dock import ValueSlider


class StyleGroup(QGroupBox):
    """``changed()`` on any value; ``loadRequested()`` / ``exportRequested()`` for the latent
    buttons; ``regionCleared(str)`` when a per-region style row's × is clicked."""

    changed = Signal()
    loadRequested = Signal()
    exportRequested = Signal()
    regionCleared = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Semantic (DMN style)", parent)
        self.setObjectName("dmnStyleGroup")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        self.hint = QLabel()
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        outer.addWidget(self.hint)
        self.body = QWidget()
        outer.addWidget(self.body)
        lay = QVBoxLayout(self.body)
        lay.setContentsMargins(0, 0, 0, 0)
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.form)
        row = QHBoxLayout()
        self.conditional = QCheckBox("Keep other attributes fixed")
        self.conditional.setChecked(True)
        self.conditional.setToolTip("Conditional manipulation (InterFaceGAN): each slider moves the style code "
                                    "along its boundary with the other boundaries' normals projected out")
        self.conditional.toggled.connect(lambda _on: self.changed.emit())
        self.reset_btn = themed(QPushButton("Reset"), "mdi6.restore")
        self.reset_btn.setToolTip("Set every DMN style slider back to 0")
        self.reset_btn.clicked.connect(self.reset)
        row.addWidget(self.conditional, 1)
        row.addWidget(self.reset_btn)
        lay.addLayout(row)
        self.regions_label = QLabel("Per-region styles: right-click a gallery thumbnail ▸ Use for …")
        self.regions_label.setWordWrap(True)
        self.regions_label.setObjectName("hint")
        lay.addWidget(self.regions_label)
        self.regions_box = QVBoxLayout()
        self.regions_box.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.regions_box)
        self.region_rows: dict[str, QWidget] = {}
        files = QHBoxLayout()
        self.load_btn = themed(QPushButton("Load style…"), "mdi6.folder-open-outline")
        self.load_btn.setToolTip("Use a saved DMN style latent (.npy + .json) as the style of the render")
        self.load_btn.clicked.connect(self.loadRequested)
        self.export_btn = themed(QPushButton("Export style…"), "mdi6.content-save-outline")
        self.export_btn.setToolTip("Save the current DMN style code (slider edits and per-region styles applied)")
        self.export_btn.clicked.connect(self.exportRequested)
        files.addWidget(self.load_btn)
        files.addWidget(self.export_btn)
        lay.addLayout(files)
        self.loaded_label = QLabel("")
        self.loaded_label.setWordWrap(True)
        lay.addWidget(self.loaded_label)
        self.sliders: dict[str, ValueSlider] = {}
        self.set_available(False, "Checking installed models…")

    # ---------------------------------------------------------------- status
    def set_available(self, available: bool, reason: str = "") -> None:
        self.hint.setVisible(not available)
        self.hint.setText(reason or "No DMN style boundaries for the active DMN")
        self.body.setEnabled(available)
        self.body.setVisible(available)

    def set_boundaries(self, infos: list[dict[str, Any]]) -> None:
        """``infos``: [{"name", "what", "tooltip"}] in display order."""
        names = [i["name"] for i in infos]
        if list(self.sliders) == names:
            return
        keep = {k: s.value() for k, s in self.sliders.items()}
        while self.form.rowCount():
            self.form.removeRow(0)
        self.sliders = {}
        for info in infos:
            name = info["name"]
            s = ValueSlider(-3.0, 3.0, keep.get(name, 0.0), steps=120, decimals=1,
                            tooltip=info.get("tooltip") or f"Move the DMN style code along '{name}' (std units)")
            s.setObjectName(f"dmnStyle_{name}")
            s.valueChanged.connect(lambda _v: self.changed.emit())
            label = QLabel(name.replace("_", " "))
            label.setToolTip(info.get("tooltip") or name)
            self.form.addRow(label, s)
            self.sliders[name] = s

    def set_regions(self, regions: dict[str, str]) -> None:
        """``regions``: {region display name: exemplar name} — one row each with a × button."""
        for w in self.region_rows.values():
            self.regions_box.removeWidget(w)
            w.deleteLater()
        self.region_rows = {}
        for region, exemplar in regions.items():
            w = QWidget()
            h = QHBoxLayout(w)
            h.setContentsMargins(0, 0, 0, 0)
            h.addWidget(QLabel(f"{region}: {exemplar}"), 1)
            x = QToolButton()
            themed(x, "mdi6.close")
            x.setToolTip(f"Use the main exemplar for {region} again")
            x.clicked.connect(lambda _c=False, r=region: self.regionCleared.emit(r))
            h.addWidget(x)
            self.regions_box.addWidget(w)
            self.region_rows[region] = w

    # ---------------------------------------------------------------- values
    def reset(self) -> None:
        for s in self.sliders.values():
            s.set_value(0.0, emit=False)
        self.changed.emit()

    def edits(self) -> dict[str, float]:
        return {k: round(s.value(), 4) for k, s in self.sliders.items() if round(s.value(), 4) != 0.0}

    def state(self) -> dict[str, Any]:
        return {"style_edits": self.edits(), "style_conditional": self.conditional.isChecked()}

    def set_state(self, st: dict[str, Any]) -> None:
        edits = st.get("style_edits") or {}
        for k, s in self.sliders.items():
            s.set_value(float(edits.get(k, 0.0)), emit=False)
        self._pending = {k: v for k, v in edits.items() if k not in self.sliders}
        if "style_conditional" in st:
            self.conditional.blockSignals(True)
            self.conditional.setChecked(bool(st["style_conditional"]))
            self.conditional.blockSignals(False)
