"""qtawesome icons, coloured for the current theme; a missing icon never breaks the UI."""
from __future__ import annotations

from PySide6.QtGui import QIcon

_color = "#444444"


def set_icon_color(color: str) -> None:
    global _color
    _color = color


def icon(name: str, **kwargs) -> QIcon:
    try:
        import qtawesome as qta

        kwargs.setdefault("color", _color)
        kwargs.setdefault("color_disabled", "#888888")
        return qta.icon(name, **kwargs)
    except Exception:  # noqa: BLE001 - an icon font problem must not stop the app
        return QIcon()
