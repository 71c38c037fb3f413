"""The editing session without any widget: what one MaskStudio window is working on.

:class:`EditSession` holds the state the main window used to keep in its own attributes — the
mask document and the mask as opened, the exemplar (style reference) and source photo, the
per-region exemplar choices, the typed :class:`~maskstudio.engine.render_settings.RenderSettings`,
the tool state (active class, locks, mirror, brush size), the latest W+ latent, the project path,
the dirty state and the busy state — and it reads and writes projects and autosaves.

No Qt and no torch (numpy, :mod:`maskstudio.mask`, :mod:`maskstudio.session.project`,
:mod:`maskstudio.engine.types`), so every rule here is tested headless. A UI wires widgets to it:
it calls the setters, and listens (:meth:`EditSession.add_listener`) for the events

- ``"document"`` — a new :class:`~maskstudio.mask.MaskDocument` replaced the old one (re-attach
  document listeners, show it),
- ``"dirty"`` — the dirty state may have changed (title bar),
- ``"busy"`` — :attr:`EditSession.busy` may have changed (busy indicator),
- ``"exemplar"`` — the exemplar changed,
- ``"settings"`` — the render settings were replaced (e.g. from a project: show them).

Autosave snapshots are built from the undo patches (:meth:`MaskDocument.history_snapshots`) on
copies: the live document is never walked back and forth, so an autosave during a stroke or
while a render reads the mask changes nothing.

Extending (issues 13, 17, 19): photo editing adds its source photo + alignment next to
:attr:`source_photo` (and, when it must survive a save, a project field); per-region styles fill
:attr:`region_styles` (class index -> exemplar key); new render choices are fields of
:class:`RenderSettings`, not attributes here.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from maskstudio.engine.render_settings import RenderSettings
from maskstudio.engine.types import Exemplar
from maskstudio.session.project import Project, load_project, save_project
from maskstudio.mask import MaskDocument
from maskstudio.session.autosave import AutosaveStore, CrashedAutosave

#: undo steps kept in a project file, and in an autosave (the autosave is written every minute)
MAX_PROJECT_HISTORY = 50
AUTOSAVE_HISTORY = 10
EVENTS = ("document", "dirty", "busy", "exemplar", "settings")

Listener = Callable[[str], None]


class EditSession:
    """One editing session. ``autosave``: where autosaves go (None: no autosave).

    Public state (read freely; change through the methods so listeners hear about it):

    - ``doc``: the :class:`MaskDocument` being edited, or None before the first one.
    - ``original_labels`` (property): the mask as first opened (what "erase to original"
      restores and A/B compares against), read-only; None without a document.
    - ``exemplar`` / ``exemplar_path``: the DMN style reference (:class:`Exemplar`) and the file
      it came from (None when unknown).
    - ``source_photo``: uint8 HxWx3 photo the mask was parsed from (None for painted masks).
    - ``region_styles``: {class index: exemplar key} per-region exemplar choices (empty: the
      one exemplar styles every region); the sources themselves (an :class:`Exemplar` or a
      :class:`StyleCode` from a style latent) are in ``style_sources`` by key, and
      :meth:`region_request` gives the engine's ``region_styles`` mapping.
    - ``style_code``: a loaded DMN style latent's main code (:class:`StyleCode`) used instead of
      encoding the exemplar, or None.
    - ``render_settings``: the typed :class:`RenderSettings`.
    - ``active_class``, ``locked`` (set of class indices), ``mirror``, ``brush_px``: tool state;
      locks and mirror carry over to each new document.
    - ``latent``: the latest W+ latent (float32 [1, n, 512]) or None.
    - ``project_path``: the project file this session was saved to / opened from.
    """

    def __init__(self, autosave: AutosaveStore | None = None) -> None:
        self.doc: MaskDocument | None = None
        self.exemplar: Exemplar | None = None
        self.exemplar_path: Path | None = None
        self.source_photo: np.ndarray | None = None
        #: photo editing (issue 13): the opened photo (full image, alignment, crop, parsed mask)
        #: and whether strokes re-render the whole face instead of only the changed regions
        self.photo = None   # maskstudio.photo.edit.PhotoSource | None
        self.whole_face = False
        self.region_styles: dict[int, str] = {}
        self.style_sources: dict[str, Any] = {}   # key -> Exemplar | StyleCode (per-region styles)
        self.region_names: dict[int, str] = {}    # class index -> region name shown in the UI
        self.style_code: Any = None
        self.render_settings = RenderSettings()
        self.active_class = 1
        self.locked: set[int] = set()
        self.mirror = False
        self.brush_px = 16.0
        self.latent: np.ndarray | None = None
        self.project_path: Path | None = None
        self.autosave = autosave
        self._extra_dirty = False    # exemplar / settings changes (the document tracks its own)
        self._changes = 0            # bumped by every non-document change (autosave key)
        self._autosaved_key: Any = None
        self._busy: set[str] = set()
        self._listeners: list[Listener] = []

    # ------------------------------------------------------------------ listeners
    def add_listener(self, fn: Listener) -> None:
        """``fn(event)`` for each event of :data:`EVENTS` (see the module docstring)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        self._listeners.remove(fn)

    def _emit(self, event: str) -> None:
        for fn in list(self._listeners):
            fn(event)

    # ------------------------------------------------------------------ document
    @property
    def original_labels(self) -> np.ndarray | None:
        return None if self.doc is None else self.doc.original

    def new_document(self, labels: np.ndarray, *, original_size_hw: tuple[int, int] | None = None,
                     original: np.ndarray | None = None,
                     history: list[tuple[str, np.ndarray]] | None = None) -> MaskDocument:
        """Start editing ``labels`` (a fresh :class:`MaskDocument`, clean). ``original``: the
        mask as first opened when it differs from ``labels`` (a saved project); ``history``:
        saved ``(name, snapshot)`` undo steps from ``original`` to ``labels``, replayed into the
        new document so undo walks back through them. Locks and mirror carry over."""
        labels = np.ascontiguousarray(labels, dtype=np.uint8)
        if original is not None and original.shape == labels.shape and not np.array_equal(original, labels):
            doc = MaskDocument(np.ascontiguousarray(original, dtype=np.uint8), original_size_hw=original_size_hw)
            for step_name, snap in history or []:
                if snap.shape == labels.shape:
                    doc.set_labels(snap, name=step_name, respect_lock=False)
            if not np.array_equal(doc.labels, labels):
                doc.set_labels(labels, name="Saved edits", respect_lock=False)
            doc.mark_clean()
        else:
            doc = MaskDocument(labels, original_size_hw=original_size_hw)
        doc.locked = set(self.locked)
        doc.mirror = bool(self.mirror)
        self.doc = doc
        self._extra_dirty = False
        self._emit("document")
        self._emit("dirty")
        return doc

    # ------------------------------------------------------------------ tool state
    def set_active_class(self, index: int) -> None:
        self.active_class = int(index)

    def set_locked(self, cls: int, locked: bool) -> None:
        (self.locked.add if locked else self.locked.discard)(int(cls))
        if self.doc is not None:
            (self.doc.locked.add if locked else self.doc.locked.discard)(int(cls))

    def set_mirror(self, on: bool) -> None:
        self.mirror = bool(on)
        if self.doc is not None:
            self.doc.mirror = self.mirror

    def set_brush_px(self, diameter_px: float) -> None:
        self.brush_px = float(diameter_px)

    # ------------------------------------------------------------------ exemplar / settings / latent
    def set_exemplar(self, exemplar: Exemplar | None, path: str | os.PathLike[str] | None = None, *,
                     mark_dirty: bool = True) -> None:
        """Use ``exemplar`` as the style reference. ``mark_dirty``: it is a user change (False
        while a document is being set up)."""
        self.exemplar = exemplar
        self.exemplar_path = Path(path) if path else None
        if mark_dirty and self.doc is not None:
            self.mark_changed()
        self._emit("exemplar")

    # ------------------------------------------------------------------ DMN style space
    def set_region_style(self, classes, source, region: str = "", *, mark_dirty: bool = True) -> None:
        """Style the class indices ``classes`` with ``source`` (Exemplar or StyleCode); None
        drops their per-region choice (back to the main exemplar)."""
        for c in classes:
            if source is None:
                self.region_styles.pop(int(c), None)
                self.region_names.pop(int(c), None)
            else:
                self.region_styles[int(c)] = source.key
                self.region_names[int(c)] = region or str(c)
        if source is not None:
            self.style_sources[source.key] = source
        used = set(self.region_styles.values())
        self.style_sources = {k: v for k, v in self.style_sources.items() if k in used}
        if mark_dirty and self.doc is not None:
            self.mark_changed()
        self._emit("exemplar")

    def clear_region(self, region: str) -> None:
        self.set_region_style([c for c, r in self.region_names.items() if r == region], None)

    def region_request(self) -> dict[int, Any]:
        """{class index: Exemplar | StyleCode} for ``RenderRequest.region_styles``."""
        return {c: self.style_sources[k] for c, k in self.region_styles.items() if k in self.style_sources}

    def region_summary(self) -> dict[str, str]:
        """{region name: source name} for display."""
        out: dict[str, str] = {}
        for c, k in sorted(self.region_styles.items()):
            src = self.style_sources.get(k)
            out.setdefault(self.region_names.get(c, str(c)), getattr(src, "name", "") or k[:8])
        return out

    def set_style_code(self, code, *, mark_dirty: bool = True) -> None:
        """Use a loaded DMN style code as the main style (None: encode the exemplar again)."""
        self.style_code = code
        if mark_dirty and self.doc is not None:
            self.mark_changed()
        self._emit("exemplar")

    def set_render_settings(self, settings: RenderSettings, *, mark_dirty: bool = True) -> None:
        if not isinstance(settings, RenderSettings):
            raise TypeError(f"render settings must be RenderSettings, not {type(settings).__name__}")
        changed = settings != self.render_settings
        self.render_settings = settings
        if changed:
            self._changes += 1       # the autosave keeps it, dirty or not
            if mark_dirty:
                self.mark_changed()

    def set_latent(self, latent: np.ndarray | None) -> None:
        self.latent = None if latent is None else np.asarray(latent, dtype=np.float32)

    # ------------------------------------------------------------------ dirty
    @property
    def dirty(self) -> bool:
        """Unsaved changes: in the document, or in the exemplar / settings."""
        return bool(self.doc is not None and self.doc.dirty) or self._extra_dirty

    def mark_changed(self) -> None:
        """A change outside the document (exemplar, settings) that a save should keep."""
        self._extra_dirty = True
        self._changes += 1
        self._emit("dirty")

    def mark_clean(self) -> None:
        """The current state is saved."""
        if self.doc is not None:
            self.doc.mark_clean()
        self._extra_dirty = False
        self._emit("dirty")

    @property
    def display_name(self) -> str:
        return self.project_path.name if self.project_path else "untitled"

    # ------------------------------------------------------------------ busy
    def set_busy(self, job: str, busy: bool) -> None:
        """Record that background ``job`` (e.g. "render", "parse", "tool") started / ended."""
        before = bool(self._busy)
        (self._busy.add if busy else self._busy.discard)(str(job))
        if bool(self._busy) != before:
            self._emit("busy")

    @property
    def busy(self) -> bool:
        """Some background job runs (the one busy flag of the window)."""
        return bool(self._busy)

    @property
    def busy_jobs(self) -> frozenset[str]:
        return frozenset(self._busy)

    # ------------------------------------------------------------------ projects
    def history_snapshots(self, limit: int = MAX_PROJECT_HISTORY) -> list[tuple[str, np.ndarray]]:
        """The mask after each of the newest ``limit`` applied undo steps (from the patches)."""
        if self.doc is None or limit <= 0:
            return []
        return self.doc.history_snapshots(limit)

    def to_project(self, *, models: Mapping[str, Any] | None = None, history_limit: int | None = None) -> Project:
        """The session as a :class:`Project` (arrays copied). ``models``: identities of the models
        in use (informative). ValueError without a document."""
        if self.doc is None:
            raise ValueError("no document to save")
        ex = self.exemplar
        return Project(
            labels=np.array(self.doc.labels),
            original_labels=np.array(self.doc.original),
            original_size_hw=self.doc.original_size_hw,
            exemplar_name=(ex.name or None) if ex is not None else None,
            exemplar_image=None if ex is None else np.array(ex.image),
            exemplar_mask=None if ex is None or ex.labels is None else np.array(ex.labels),
            exemplar_path=str(self.exemplar_path) if self.exemplar_path else None,
            render_settings=self.render_settings,
            latents=self._project_latents(),
            region_styles=self._project_regions(),
            models=dict(models or {}),
            history=self.history_snapshots(MAX_PROJECT_HISTORY if history_limit is None else history_limit),
            **self._photo_fields(),
        )

    def _photo_fields(self) -> dict[str, Any]:
        ph = self.photo
        if ph is None or ph.alignment is None or ph.file_bytes is None:
            return {"whole_face": self.whole_face}
        return {"photo_file": ph.file_bytes, "photo_name": ph.name, "photo_alignment": ph.alignment.to_json(),
                "photo_parsed": np.array(ph.parsed), "whole_face": self.whole_face}

    def set_photo(self, photo) -> None:
        """The photo being edited (a :class:`~maskstudio.photo.edit.PhotoSource`), or None."""
        self.photo = photo
        self.source_photo = None if photo is None else photo.image

    def set_whole_face(self, on: bool) -> None:
        if bool(on) != self.whole_face:
            self.whole_face = bool(on)
            self.mark_changed()

    def _project_latents(self) -> dict[str, np.ndarray]:
        out = {"w_plus": self.latent.astype(np.float32)} if self.latent is not None else {}
        if self.style_code is not None:
            out["dmn_style"] = np.asarray(self.style_code.code, np.float32)[None]
        return out

    def _project_regions(self) -> list[dict[str, Any]]:
        from maskstudio.labels import NAMES

        groups: dict[str, dict[str, Any]] = {}
        for c, k in sorted(self.region_styles.items()):
            src = self.style_sources.get(k)
            if src is None:
                continue
            g = groups.setdefault(k, {"classes": [], "region": self.region_names.get(c, ""),
                                      "name": getattr(src, "name", "") or ""})
            g["classes"].append(NAMES[c])
            if isinstance(src, Exemplar):
                g["image"], g["mask"] = np.array(src.image), None if src.labels is None else np.array(src.labels)
            else:
                g["code"] = np.asarray(src.code, np.float32)[None]
        return list(groups.values())

    def _apply_regions(self, proj: Project) -> None:
        from maskstudio.engine.types import StyleCode
        from maskstudio.labels import NAMES

        self.region_styles, self.style_sources, self.region_names = {}, {}, {}
        for g in proj.region_styles:
            src: StyleCode | Exemplar
            if g.get("code") is not None:
                src = StyleCode(g["code"], name=g.get("name") or "")
            else:
                src = Exemplar(np.ascontiguousarray(g["image"], np.uint8),
                               None if g.get("mask") is None else np.ascontiguousarray(g["mask"], np.uint8),
                               name=g.get("name") or "")
            self.set_region_style([NAMES.index(c) for c in g["classes"]], src, g.get("region") or "",
                                  mark_dirty=False)
        code = proj.latents.get("dmn_style")
        self.style_code = None if code is None else StyleCode(np.asarray(code, np.float32), name="project style")

    def apply_project(self, proj: Project) -> MaskDocument:
        """Take over everything ``proj`` holds (the project path is left to the caller)."""
        self.set_photo(None)
        if proj.photo_file is not None:
            from maskstudio.photo.edit import PhotoSource

            # load_project and save_project refuse a photo without its parsed mask
            assert proj.photo_parsed is not None, "a project's source photo needs its parsed mask"
            self.set_photo(PhotoSource.from_saved(proj.photo_file, proj.photo_name or "photo",
                                                  proj.photo_alignment or {}, proj.photo_parsed))
        self.whole_face = bool(proj.whole_face)
        self.set_render_settings(proj.render_settings, mark_dirty=False)
        self._emit("settings")
        w = proj.latents.get("w_plus")
        self.set_latent(None if w is None else np.asarray(w))
        self._apply_regions(proj)
        if proj.exemplar_image is not None:
            ex = Exemplar(np.ascontiguousarray(proj.exemplar_image, dtype=np.uint8),
                          None if proj.exemplar_mask is None else np.ascontiguousarray(proj.exemplar_mask, np.uint8),
                          name=proj.exemplar_name or "")
            self.set_exemplar(ex, proj.exemplar_path, mark_dirty=False)
        return self.new_document(proj.labels, original_size_hw=proj.original_size_hw,
                                 original=proj.original_labels, history=proj.history)

    def save_project(self, path: str | os.PathLike[str], *, models: Mapping[str, Any] | None = None) -> Path:
        """Write the project to ``path`` (``.msproj`` added when there is no suffix); the session
        is clean afterwards and remembers the path. ProjectFileError naming the file on failure."""
        path = Path(path)
        if path.suffix == "":
            path = path.with_suffix(".msproj")
        save_project(path, self.to_project(models=models))
        self.project_path = path
        self.mark_clean()
        return path

    def open_project(self, path: str | os.PathLike[str]) -> Project:
        """Read ``path`` and take it over (nothing changes when reading fails)."""
        proj = load_project(path)
        self.apply_project(proj)
        self.project_path = Path(path)
        self._emit("dirty")
        return proj

    # ------------------------------------------------------------------ autosave
    def _autosave_key(self) -> tuple:
        doc = self.doc
        return (id(doc), getattr(doc, "revision", None), self._extra_dirty, self._changes)

    def autosave_snapshot(self, *, models: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None):
        """What an autosave would write now, as ``(project, key)`` — or None when nothing changed
        since the last autosave (or there is no store / document). Cheap (array copies, ~1 ms
        at 512²): take it on the GUI thread, write it with :meth:`autosave_write` anywhere.
        ``models``: identities, or a function giving them (called only when there is a change)."""
        if self.autosave is None or self.doc is None:
            return None
        key = self._autosave_key()
        if key == self._autosaved_key:
            return None
        ids = models() if callable(models) else models
        return self.to_project(models=ids, history_limit=AUTOSAVE_HISTORY), key

    def autosave_write(self, project: Project, key: Any) -> Path:
        """Write a snapshot from :meth:`autosave_snapshot` (any thread; the PNG encoding and zip
        writing take about 0.35 s at 512² with 10 undo steps: ``python -m maskstudio.bench.autosave``). Errors (ProjectFileError) propagate;
        the previous autosave then stays and the next snapshot tries again."""
        if self.autosave is None:
            raise ValueError("this session has no autosave store")
        path = self.autosave.save(project)
        self._autosaved_key = key
        return path

    def autosave_now(self, *, models: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None) -> bool:
        """Write the autosave now (calling thread) when something changed since the last one.
        Returns True when it wrote."""
        snap = self.autosave_snapshot(models=models)
        if snap is None:
            return False
        self.autosave_write(*snap)
        return True

    def recover(self, crashed: CrashedAutosave) -> Project:
        """Take over the autosave of a crashed session (:meth:`AutosaveStore.find_crashed`): the
        result counts as unsaved work, is autosaved at once into this session's own autosave,
        and only then are the crashed session's files deleted — so the work always exists in
        at least one autosave. On failure (damaged file) the crashed files stay, released."""
        try:
            proj = crashed.load()
            self.apply_project(proj)
            self.mark_changed()
            if self.autosave is not None:
                self.autosave_now()
        except BaseException:
            crashed.release()
            raise
        crashed.discard()
        return proj
