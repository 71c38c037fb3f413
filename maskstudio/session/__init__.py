"""maskstudio.session: the Qt-free editing session (state, projects, autosave) a window wires to.

- :class:`EditSession` (:mod:`maskstudio.session.edit_session`): document, exemplar, per-region
  choices, render settings, tool state, latent, dirty/busy state, project read/write, autosave.
- :class:`AutosaveStore` (:mod:`maskstudio.session.autosave`): the autosave file + session lock.
- :class:`~maskstudio.engine.render_settings.RenderSettings` is re-exported here for convenience
  (it lives in the engine layer because project files and the CLI use it too).
"""
from maskstudio.engine.render_settings import AgileSettings, DualSettings, RenderSettings
from maskstudio.session.autosave import AutosaveStore
from maskstudio.session.edit_session import AUTOSAVE_HISTORY, EVENTS, MAX_PROJECT_HISTORY, EditSession

__all__ = [
    "AUTOSAVE_HISTORY", "AgileSettings", "AutosaveStore", "DualSettings", "EVENTS", "EditSession",
    "MAX_PROJECT_HISTORY", "RenderSettings",
]
