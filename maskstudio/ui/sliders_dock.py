"""Latent sliders dock: semantic boundaries, AgileGAN, DualStyleGAN, Image2StyleGAN tools, morph.

Each group is enabled only when the engine reports its models as available; otherwise it shows a
one-line hint and a button that opens the Models dialog. Every change emits ``changed`` (the main
window re-renders live). The widget holds values only — no model logic: it reads and writes the
slider part of a :class:`~maskstudio.engine.render_settings.RenderSettings` (:meth:`SlidersWidget.values`,
:meth:`SlidersWidget.set_values`), where the DualStyleGAN slot layout and defaults live.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
    QScrollArea, QSlider, QToolButton, QVBoxLayout, QWidget,
)

from maskstudio.engine.render_settings import (
    COLOUR_SLOTS, DEFAULT_DUAL_TRUNCATION, DEFAULT_DUAL_WEIGHTS, N_DUAL_WEIGHTS, STRUCTURE_SLOTS, AgileSettings, DualSettings, RenderSettings,
)
from maskstudio.ui.icons import themed

__all__ = ["COLOUR_SLOTS", "GroupStatus", "N_DUAL_WEIGHTS", "STRUCTURE_SLOTS", "SlidersWidget", "ValueSlider"]


@dataclass
class GroupStatus:
    available: bool
    reason: str = ""
    choices: list[str] = field(default_factory=list)   # boundaries / styles the group offers
    codes: dict[str, list[str]] = field(default_factory=dict)  # DualStyleGAN: model id -> style code names by style id
    official_ids: dict[str, bool] = field(default_factory=dict)  # DualStyleGAN: ids are the official --style_id
    note: str = ""  # a line shown in the group when available (Image2StyleGAN: the loss in use)
    tips: dict[str, str] = field(default_factory=dict)          # choice -> tooltip (DMN style boundaries)


class ValueSlider(QWidget):
    """Horizontal slider over a float range with a value label."""

    valueChanged = Signal(float)

    def __init__(self, lo: float, hi: float, value: float, steps: int = 200, decimals: int = 2,
                 tooltip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lo, self.hi, self.steps, self.decimals = lo, hi, steps, decimals
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, steps)
        self.slider.setToolTip(tooltip)
        self.label = QLabel()
        self.label.setMinimumWidth(38)
        self.label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.label)
        self.set_value(value, emit=False)
        self.slider.valueChanged.connect(self._on)

    def value(self) -> float:
        return self.lo + (self.hi - self.lo) * self.slider.value() / self.steps

    def set_value(self, v: float, emit: bool = True) -> None:
        pos = round((float(v) - self.lo) / (self.hi - self.lo) * self.steps)
        self.slider.blockSignals(not emit)
        self.slider.setValue(max(0, min(self.steps, pos)))
        self.slider.blockSignals(False)
        self.label.setText(f"{self.value():.{self.decimals}f}")

    def _on(self, _pos: int) -> None:
        self.label.setText(f"{self.value():.{self.decimals}f}")
        self.valueChanged.emit(self.value())


class _Group(QGroupBox):
    def __init__(self, title: str, on_models, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.outer = QVBoxLayout(self)
        self.outer.setContentsMargins(6, 6, 6, 6)
        self.hint_row = QWidget()
        h = QHBoxLayout(self.hint_row)
        h.setContentsMargins(0, 0, 0, 0)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setObjectName("hint")
        btn = themed(QPushButton("Models…"), "mdi6.package-down")
        btn.setToolTip("Open the model manager to install or import the models this group needs")
        btn.clicked.connect(on_models)
        h.addWidget(self.hint, 1)
        h.addWidget(btn)
        self.outer.addWidget(self.hint_row)
        self.body = QWidget()
        self.outer.addWidget(self.body)

    def set_status(self, status: GroupStatus) -> None:
        self.hint_row.setVisible(not status.available)
        self.hint.setText(status.reason or "Models not installed")
        self.body.setEnabled(status.available)
        self.body.setVisible(status.available)   # unavailable: just the hint + Models… button


class SlidersWidget(QWidget):
    changed = Signal(str)              # a value of this group changed: re-render
    modelsRequested = Signal()
    toolRequested = Signal(str)        # "refine" | "crossover" | "expression"
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        self.lay = QVBoxLayout(inner)
        self.lay.setContentsMargins(4, 4, 4, 4)
        scroll.setWidget(inner)
        outer.addWidget(scroll)
        self.groups: dict[str, _Group] = {}
        self.boundary_sliders: dict[str, ValueSlider] = {}
        self._build_dmn_style()
        self._build_boundaries()
        self._build_agile()
        self._build_dual()
        self._build_tools()
        self._build_morph()
        self.lay.addStretch(1)
        self.set_status({k: GroupStatus(False, "Checking installed models…") for k in self.groups})

    # ---------------------------------------------------------------- groups
    def _group(self, key: str, title: str) -> _Group:
        g = _Group(title, self.modelsRequested.emit)
        self.groups[key] = g
        self.lay.addWidget(g)
        return g

    def _build_dmn_style(self) -> None:
        from maskstudio.ui.style_sliders import StyleGroup   # (imports ValueSlider from here)

        self.dmn_style = StyleGroup()
        self.dmn_style.changed.connect(lambda: self.changed.emit("dmn_style"))
        self.lay.addWidget(self.dmn_style)

    def _build_boundaries(self) -> None:
        g = self._group("edit", "Semantic edits (StyleGAN2 boundaries)")
        self.boundary_form = QFormLayout(g.body)
        self.boundary_form.setContentsMargins(0, 0, 0, 0)
        reset = themed(QPushButton("Reset"), "mdi6.restore")
        reset.setToolTip("Set every semantic edit back to 0")
        reset.clicked.connect(self.reset_boundaries)
        self.boundary_reset = reset
        self.boundary_form.addRow(reset)

    def set_boundaries(self, names: list[str]) -> None:
        if list(self.boundary_sliders) == list(names):
            return
        while self.boundary_form.rowCount() > 1:   # keep the Reset row (last)
            self.boundary_form.removeRow(0)
        self.boundary_sliders = {}
        for name in names:
            s = ValueSlider(-3.0, 3.0, 0.0, steps=120, tooltip=f"Move the face along the '{name}' boundary")
            s.valueChanged.connect(lambda _v: self.changed.emit("edit"))
            short = name.split("/")[-1].removeprefix("boundary_").removesuffix("_w_boundary").removesuffix("_boundary")
            label = QLabel(short.replace("_", " "))
            label.setToolTip(name)
            self.boundary_form.insertRow(self.boundary_form.rowCount() - 1, label, s)
            self.boundary_sliders[name] = s

    def reset_boundaries(self) -> None:
        for s in self.boundary_sliders.values():
            s.set_value(0.0, emit=False)
            s.label.setText(f"{0.0:.2f}")
        self.changed.emit("edit")

    def _build_agile(self) -> None:
        g = self._group("agile", "AgileGAN stylisation")
        form = QFormLayout(g.body)
        form.setContentsMargins(0, 0, 0, 0)
        self.agile_style = QComboBox()
        self.agile_style.setToolTip("Installed AgileGAN style generator")
        self.agile_strength = ValueSlider(0.0, 1.0, 1.0, steps=100, tooltip="Stylisation strength (0 = photo, 1 = full style)")
        self.agile_branch = QComboBox()
        self.agile_branch.addItems(["auto", "A", "B"])
        self.agile_branch.setToolTip("Attribute branch: A (female), B (male), auto from the latent")
        form.addRow("Style", self.agile_style)
        form.addRow("Strength", self.agile_strength)
        form.addRow("Branch", self.agile_branch)
        self.agile_style.currentIndexChanged.connect(lambda _i: self.changed.emit("agile"))
        self.agile_strength.valueChanged.connect(lambda _v: self.changed.emit("agile"))
        self.agile_branch.currentIndexChanged.connect(lambda _i: self.changed.emit("agile"))

    def _build_dual(self) -> None:
        g = self._group("dual", "DualStyleGAN")
        lay = QVBoxLayout(g.body)
        lay.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.dual_style = QComboBox()
        self.dual_style.setToolTip("Installed DualStyleGAN style model")
        self.dual_style.currentIndexChanged.connect(self._on_dual_style)
        self.dual_code = QComboBox()
        self.dual_code.setToolTip("Extrinsic style code of the DualStyleGAN model "
                                  "(a gallery exemplar with the same name selects it too)")
        self.dual_code.currentIndexChanged.connect(lambda _i: self.changed.emit("dual"))
        self._dual_codes: dict[str, list[str]] = {}
        self._dual_official: dict[str, bool] = {}
        self.dual_keep_colours = QCheckBox("Keep colours")
        self.dual_keep_colours.setToolTip("Keep the photo's colours: the colour layers take the face's own code "
                                          "(the official --preserve_color)")
        self.dual_keep_colours.toggled.connect(lambda _c: self.changed.emit("dual"))
        self.dual_truncation = ValueSlider(0.0, 1.0, DEFAULT_DUAL_TRUNCATION, steps=100,
                                           tooltip="Truncation of the face's (intrinsic) code toward the mean: "
                                                   "1 = none, official default 0.75")
        self.dual_truncation.valueChanged.connect(lambda _v: self.changed.emit("dual"))
        self.dual_structure = ValueSlider(0.0, 1.0, DEFAULT_DUAL_WEIGHTS[STRUCTURE_SLOTS.start], steps=100,
                                          tooltip=f"Structure master: sets layer weights {STRUCTURE_SLOTS.start}–{STRUCTURE_SLOTS.stop - 1}")
        self.dual_colour = ValueSlider(0.0, 1.0, DEFAULT_DUAL_WEIGHTS[COLOUR_SLOTS.start], steps=100,
                                       tooltip=f"Colour master: sets layer weights {COLOUR_SLOTS.start}–{COLOUR_SLOTS.stop - 1}")
        form.addRow("Style", self.dual_style)
        form.addRow("Code", self.dual_code)
        form.addRow("Truncation", self.dual_truncation)
        form.addRow("", self.dual_keep_colours)
        form.addRow("Structure", self.dual_structure)
        form.addRow("Colour", self.dual_colour)
        lay.addLayout(form)
        grid = QGridLayout()
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(0)
        self.dual_weights: list[ValueSlider] = []
        for k in range(N_DUAL_WEIGHTS):
            kind = "structure" if k in STRUCTURE_SLOTS else "colour"
            s = ValueSlider(0.0, 1.0, DEFAULT_DUAL_WEIGHTS[k], steps=100,
                            tooltip=f"Layer {k} weight ({kind})")
            s.valueChanged.connect(lambda _v: self.changed.emit("dual"))
            lab = QLabel(f"w{k}")
            lab.setToolTip(f"Latent slot {k}: {kind}")
            col = 0 if k < 9 else 2
            grid.addWidget(lab, k % 9, col)
            grid.addWidget(s, k % 9, col + 1)
            self.dual_weights.append(s)
        lay.addLayout(grid)
        self.dual_structure.valueChanged.connect(lambda v: self._master(STRUCTURE_SLOTS, v))
        self.dual_colour.valueChanged.connect(lambda v: self._master(COLOUR_SLOTS, v))

    def _master(self, slots, v: float) -> None:
        for k in slots:
            self.dual_weights[k].set_value(v, emit=False)
        self.changed.emit("dual")

    def _build_tools(self) -> None:
        g = self._group("tools", "Image2StyleGAN tools")
        lay = QVBoxLayout(g.body)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.refine_btn = themed(QPushButton("Refine embedding"), "mdi6.target")
        self.refine_btn.setToolTip("Optimise the W+ embedding of the rendered face (runs in the background)")
        self.refine_btn.clicked.connect(lambda: self.toolRequested.emit("refine"))
        self.cancel_btn = QToolButton()
        themed(self.cancel_btn, "mdi6.close-circle-outline")
        self.cancel_btn.setToolTip("Cancel the running tool")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancelRequested)
        row.addWidget(self.refine_btn, 1)
        row.addWidget(self.cancel_btn)
        lay.addLayout(row)
        self.loss_label = QLabel("")
        self.loss_label.setWordWrap(True)
        self.loss_label.setObjectName("hint")
        self.loss_label.setToolTip("What the refine embedding optimises (Image2StyleGAN: pixel MSE + VGG-16 "
                                   "perceptual loss when the VGG-16 is installed)")
        lay.addWidget(self.loss_label)
        opts = QHBoxLayout()
        self.refine_noise = QCheckBox("Noise maps")
        self.refine_noise.setToolTip("Image2StyleGAN++: after W+, optimise the noise maps too (recovers fine detail)")
        self.refine_masked = QCheckBox("Face only")
        self.refine_masked.setToolTip("Image2StyleGAN++ masked embedding: fit only the painted face "
                                      "(every class but background)")
        opts.addWidget(self.refine_noise)
        opts.addWidget(self.refine_masked)
        opts.addStretch(1)
        lay.addLayout(opts)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        lay.addWidget(self.progress)
        row1 = QHBoxLayout()
        self.second_btn = QPushButton("Use as 2nd face")
        self.second_btn.setToolTip("Remember the current face as the 2nd face for morph / crossover / expression transfer")
        self.second_btn.clicked.connect(lambda: self.toolRequested.emit("second"))
        self.second_label = QLabel("2nd face: not set")
        row1.addWidget(self.second_btn)
        row1.addWidget(self.second_label, 1)
        lay.addLayout(row1)
        form = QFormLayout()
        self.face_morph = ValueSlider(0.0, 1.0, 0.0, steps=100, tooltip="Morph between this face (0) and the 2nd face (1) in W+")
        self.face_morph.valueChanged.connect(lambda _v: self.toolRequested.emit("morph"))
        form.addRow("Morph to 2nd face", self.face_morph)
        lay.addLayout(form)
        row2 = QHBoxLayout()
        self.combine_buttons = []
        for key, text, tip in (("crossover", "Crossover", "Coarse layers from this face, fine layers from the 2nd face"),
                               ("expression", "Expression transfer", "Apply what you changed since opening (e.g. a smile) to the 2nd face")):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _c=False, k=key: self.toolRequested.emit(k))
            row2.addWidget(b)
            self.combine_buttons.append(b)
        lay.addLayout(row2)

    def set_tool_running(self, running: bool, progress: int = 0, text: str = "") -> None:
        self.cancel_btn.setEnabled(running)
        self.refine_btn.setEnabled(not running)
        self.second_btn.setEnabled(not running)
        self.progress.setValue(progress)
        self.progress.setFormat(text or "%p%")

    def _build_morph(self) -> None:
        g = self._group("morph", "Photo → style morph")
        form = QFormLayout(g.body)
        form.setContentsMargins(0, 0, 0, 0)
        self.morph = ValueSlider(0.0, 1.0, 1.0, steps=100, tooltip="0 = photo, 1 = full style (AgileGAN / DualStyleGAN output)")
        self.morph.valueChanged.connect(lambda _v: self.changed.emit("morph"))
        form.addRow("Amount", self.morph)

    # ---------------------------------------------------------------- status / state
    def set_status(self, status: dict[str, GroupStatus]) -> None:
        ds = status.get("dmn_style", GroupStatus(False, "No DMN style boundaries"))
        self.dmn_style.set_available(ds.available, ds.reason)
        self.dmn_style.set_boundaries([{"name": n, "tooltip": ds.tips.get(n, "")} for n in ds.choices])
        for key, g in self.groups.items():
            st = status.get(key, GroupStatus(False, "Not available"))
            g.set_status(st)
            if key == "edit":
                self.set_boundaries(st.choices)
            elif key == "agile":
                self._set_choices(self.agile_style, st.choices)
            elif key == "dual":
                self._dual_codes = dict(st.codes)
                self._dual_official = dict(st.official_ids)
                self._set_choices(self.dual_style, st.choices)
                self._fill_codes()
            elif key == "tools":
                self.loss_label.setText(st.note)

    def _on_dual_style(self, _index: int) -> None:
        self._fill_codes()
        self.changed.emit("dual")

    def _fill_codes(self) -> None:
        """Code choices "<style id>: <name>" (the id is the official --style_id when the model
        was installed with the style file's order); the item data is the name."""
        style = self.dual_style.currentText()
        names = list(self._dual_codes.get(style, []))
        labels = ["(from the exemplar)"] + [f"{i}: {n}" for i, n in enumerate(names)]
        if [self.dual_code.itemText(i) for i in range(self.dual_code.count())] == labels:
            return
        cur = self.dual_code.currentData()
        self.dual_code.blockSignals(True)
        self.dual_code.clear()
        self.dual_code.addItem(labels[0], None)
        for text, name in zip(labels[1:], names):
            self.dual_code.addItem(text, name)
        if cur in names:
            self.dual_code.setCurrentIndex(names.index(cur) + 1)
        self.dual_code.blockSignals(False)
        self.dual_code.setToolTip("Extrinsic style code: style id and name"
                                  + (" (ids as the official --style_id)" if self._dual_official.get(style)
                                     else " (installed before the style file's order was kept: import again "
                                          "for the official ids)" if names else "")
                                  + "; a gallery exemplar with the same name selects it too")

    @staticmethod
    def _set_choices(combo: QComboBox, choices: list[str]) -> None:
        if [combo.itemText(i) for i in range(combo.count())] == list(choices):
            return
        cur = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(choices)
        if cur in choices:
            combo.setCurrentText(cur)
        combo.blockSignals(False)

    def values(self, base: RenderSettings | None = None) -> RenderSettings:
        """``base`` (default: defaults) with the slider-owned fields (edits, agile, dual, morph,
        face_morph) read from the widgets; the output stays ``base``'s."""
        base = base or RenderSettings()
        return base.replace(
            edits={k: round(s.value(), 4) for k, s in self.boundary_sliders.items()},
            agile=AgileSettings(self.agile_style.currentText(), round(self.agile_strength.value(), 4),
                                self.agile_branch.currentText()),
            dual=DualSettings(self.dual_style.currentText(),
                              self.dual_code.currentData() if self.dual_code.currentIndex() > 0 else None,
                              tuple(round(s.value(), 4) for s in self.dual_weights),
                              truncation=round(self.dual_truncation.value(), 4),
                              preserve_color=self.dual_keep_colours.isChecked(), wplus=base.dual.wplus),
            face_morph=round(self.face_morph.value(), 4),
            morph=round(self.morph.value(), 4),
            style_edits={k: round(s.value(), 4) for k, s in self.dmn_style.sliders.items()},
            style_conditional=self.dmn_style.conditional.isChecked(),
        )

    def set_values(self, st: RenderSettings) -> None:
        """Show ``st`` in the widgets without emitting ``changed`` (choices not installed here,
        e.g. a style model of another machine, leave their combo box as it is)."""
        for k, v in st.edits.items():
            if k in self.boundary_sliders:
                self.boundary_sliders[k].set_value(v, emit=False)
        if st.agile.style:
            self.agile_style.setCurrentText(st.agile.style)
        self.agile_strength.set_value(st.agile.strength, emit=False)
        self.agile_branch.setCurrentText(st.agile.branch)
        if st.dual.style:
            self.dual_style.setCurrentText(st.dual.style)
        if st.dual.code:
            i = self.dual_code.findData(st.dual.code)
            if i < 0 and st.dual.code.isdigit() and int(st.dual.code) + 1 < self.dual_code.count():
                i = int(st.dual.code) + 1  # a style id
            if i >= 0:
                self.dual_code.setCurrentIndex(i)
        self.dual_truncation.set_value(st.dual.truncation, emit=False)
        self.dual_keep_colours.blockSignals(True)
        self.dual_keep_colours.setChecked(st.dual.preserve_color)
        self.dual_keep_colours.blockSignals(False)
        for s, w in zip(self.dual_weights, st.dual.weights):
            s.set_value(w, emit=False)
        self.face_morph.set_value(st.face_morph, emit=False)
        self.morph.set_value(st.morph, emit=False)
        self.dmn_style.set_state({"style_edits": dict(st.style_edits), "style_conditional": st.style_conditional})
