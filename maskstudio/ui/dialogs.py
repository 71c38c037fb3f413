"""Every dialog the app shows goes through here, so tests can observe and answer them.

``show_error`` / ``ask`` / ``get_open_path`` / ``get_save_path`` call the installed handler when
one is set (tests: :class:`DialogRecorder`), otherwise a real modal Qt dialog.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtWidgets import QAbstractButton, QFileDialog, QMessageBox, QWidget

log = logging.getLogger(__name__)

#: handler(kind, **info) -> answer. kind: "error" | "info" | "ask" | "open" | "save".
Handler = Callable[..., Any]
_handler: Handler | None = None


def set_handler(handler: Handler | None) -> Handler | None:
    """Install ``handler`` for all dialogs (None: real dialogs). Returns the previous one."""
    global _handler
    prev, _handler = _handler, handler
    return prev


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    """An error dialog naming the file and the problem. Never raises."""
    log.warning("%s: %s", title, message)
    if _handler is not None:
        _handler("error", title=title, message=message)
        return
    QMessageBox.critical(parent, title, message)


def show_info(parent: QWidget | None, title: str, message: str) -> None:
    if _handler is not None:
        _handler("info", title=title, message=message)
        return
    QMessageBox.information(parent, title, message)


def ask(parent: QWidget | None, title: str, text: str, choices: tuple[str, ...] = ("Yes", "No"),
        default: str | None = None) -> str:
    """Ask a question; returns the chosen label (one of ``choices``)."""
    if _handler is not None:
        answer = _handler("ask", title=title, text=text, choices=choices, default=default)
        return answer if answer in choices else (default or choices[-1])
    box = QMessageBox(parent)
    box.setWindowTitle(title)
    box.setText(text)
    box.setIcon(QMessageBox.Icon.Question)
    buttons: dict[QAbstractButton, str] = {}
    for label in choices:
        role = QMessageBox.ButtonRole.RejectRole if label == "Cancel" else QMessageBox.ButtonRole.AcceptRole
        if label in ("Discard", "Don't save", "No"):
            role = QMessageBox.ButtonRole.DestructiveRole
        button = box.addButton(label, role)
        buttons[button] = label
        if label == default:
            box.setDefaultButton(button)
    box.exec()
    return buttons.get(box.clickedButton(), default or choices[-1])


def get_open_path(parent: QWidget | None, caption: str, filter: str = "", directory: str = "",
                  folder: bool = False) -> str | None:
    if _handler is not None:
        return _handler("open", caption=caption, filter=filter, folder=folder, directory=directory)
    if folder:
        path = QFileDialog.getExistingDirectory(parent, caption, directory)
    else:
        path, _ = QFileDialog.getOpenFileName(parent, caption, directory, filter)
    return path or None


def get_save_path(parent: QWidget | None, caption: str, filter: str = "", directory: str = "") -> str | None:
    if _handler is not None:
        return _handler("save", caption=caption, filter=filter, directory=directory)
    path, _ = QFileDialog.getSaveFileName(parent, caption, directory, filter)
    return path or None


@dataclass
class DialogRecorder:
    """Test helper: records every dialog and answers from queues (no dialog ever blocks)."""

    errors: list[tuple[str, str]] = field(default_factory=list)
    infos: list[tuple[str, str]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    answers: deque = field(default_factory=deque)      # for ask()
    paths: deque = field(default_factory=deque)        # for get_open_path / get_save_path
    file_dialogs: list[dict] = field(default_factory=list)   # kind, caption, filter, directory of each
    faces: deque = field(default_factory=deque)        # for the face picker (index; default 0)
    face_prompts: list[int] = field(default_factory=list)  # how many faces each picker offered

    def __call__(self, kind: str, **info: Any) -> Any:
        if kind == "error":
            self.errors.append((info["title"], info["message"]))
            return None
        if kind == "info":
            self.infos.append((info["title"], info["message"]))
            return None
        if kind == "face":
            self.face_prompts.append(len(info["faces"]))
            return self.faces.popleft() if self.faces else 0
        if kind == "ask":
            self.questions.append(info["text"])
            return self.answers.popleft() if self.answers else info.get("default")
        self.file_dialogs.append({"kind": kind, **info})
        return self.paths.popleft() if self.paths else None
