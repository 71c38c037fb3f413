"""The one error hierarchy of MaskStudio. Importable from everywhere (no dependencies).

Messages name the file and the problem, e.g. ``"masks/a.png: value 23 is not a class (0..18)"``.
The UI shows any :class:`MaskStudioError` in a dialog; anything else is a bug.
"""
from __future__ import annotations

import os


class MaskStudioError(Exception):
    """Base class of every error MaskStudio reports to a user."""


class MaskFileError(MaskStudioError):
    """A mask or image file could not be read or written."""


class CheckpointError(MaskStudioError):
    """A checkpoint is missing, truncated, unsafe or does not match the architecture."""


class ConfigError(MaskStudioError):
    """A configuration value or model config is invalid."""


class DownloadError(CheckpointError):
    """A model download failed: no network, HTTP error, timeout, truncated or wrong file."""


class DownloadCancelled(CheckpointError):
    """The user cancelled an install; the partial download is kept for a later resume."""


class DiskSpaceError(CheckpointError):
    """Not enough free space in the models folder."""


class RenderError(MaskStudioError):
    """A render stage failed or is unavailable."""


class ProjectFileError(MaskStudioError):
    """A project file could not be read or written."""


class LatentFileError(MaskStudioError):
    """A latent / boundary / direction file has the wrong content or shape."""


def file_error(cls: type[MaskStudioError], path: "str | os.PathLike[str]", problem: str) -> MaskStudioError:
    """Build ``cls("{path}: {problem}")`` — the one message form used for file problems."""
    return cls(f"{os.fspath(path)}: {problem}")
