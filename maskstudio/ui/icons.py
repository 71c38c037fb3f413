"""qtawesome icons, coloured for the current theme; a missing icon never breaks the UI."""
from __future__ import annotations

import logging

from PySide6.QtGui import QIcon

log = logging.getLogger(__name__)

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
        log.warning("icon %r unavailable", name, exc_info=True)
        return QIcon()


def themed(target, name: str):
    """Set ``icon(name)`` on a widget/action and remember the name so a theme change can
    recolour it (:func:`refresh_themed`). Returns ``target``."""
    target.setProperty("msIcon", name)
    target.setIcon(icon(name))
    return target


def refresh_themed(root) -> None:
    """Re-create the icons of every themed object under ``root`` (and ``root`` itself)."""
    from PySide6.QtCore import QObject

    for obj in [root, *root.findChildren(QObject)]:
        name = obj.property("msIcon")
        if name and hasattr(obj, "setIcon"):
            obj.setIcon(icon(str(name)))
