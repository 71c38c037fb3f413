"""Light / dark theme: Fusion style + palette; icons follow the text colour."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from maskstudio.ui.icons import set_icon_color

ACCENT = "#2d8cf0"


def apply_theme(app: QApplication, dark: bool) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    if dark:
        base, window, text, mid = QColor(37, 37, 40), QColor(48, 48, 52), QColor(225, 225, 228), QColor(70, 70, 76)
        pal.setColor(QPalette.ColorRole.Window, window)
        pal.setColor(QPalette.ColorRole.WindowText, text)
        pal.setColor(QPalette.ColorRole.Base, base)
        pal.setColor(QPalette.ColorRole.AlternateBase, window)
        pal.setColor(QPalette.ColorRole.ToolTipBase, QColor(60, 60, 66))
        pal.setColor(QPalette.ColorRole.ToolTipText, text)
        pal.setColor(QPalette.ColorRole.Text, text)
        pal.setColor(QPalette.ColorRole.Button, window)
        pal.setColor(QPalette.ColorRole.ButtonText, text)
        pal.setColor(QPalette.ColorRole.BrightText, QColor("#ff5555"))
        pal.setColor(QPalette.ColorRole.Mid, mid)
        pal.setColor(QPalette.ColorRole.Dark, QColor(28, 28, 30))
        pal.setColor(QPalette.ColorRole.Light, QColor(80, 80, 86))
        pal.setColor(QPalette.ColorRole.PlaceholderText, QColor(140, 140, 146))
        for group in (QPalette.ColorGroup.Disabled,):
            pal.setColor(group, QPalette.ColorRole.Text, QColor(120, 120, 126))
            pal.setColor(group, QPalette.ColorRole.WindowText, QColor(120, 120, 126))
            pal.setColor(group, QPalette.ColorRole.ButtonText, QColor(120, 120, 126))
        set_icon_color("#dddddd")
    else:
        pal = app.style().standardPalette()
        set_icon_color("#3a3a3a")
    pal.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("white"))
    pal.setColor(QPalette.ColorRole.Link, QColor(ACCENT))
    app.setPalette(pal)
