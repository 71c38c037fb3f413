"""Moved: the autosave store is Qt-free and lives in :mod:`maskstudio.session.autosave`."""
from maskstudio.session.autosave import AUTOSAVE_NAME, LOCK_NAME, AutosaveStore

__all__ = ["AUTOSAVE_NAME", "LOCK_NAME", "AutosaveStore"]
