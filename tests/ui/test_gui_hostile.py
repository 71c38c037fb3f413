"""``maskstudio gui FILE --screenshot`` with hostile files: exit 2 with one error line, no modal
dialog (none is ever shown: the run would hang offscreen), no temporary folder left behind."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ helpers

from project_fuzz import hostile_projects, png_claiming  # noqa: E402


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder for this test only, to see what a run leaves behind."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def _files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    out = {}
    out["random.png"] = tmp_path / "random.png"
    out["random.png"].write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    out["bomb.png"] = tmp_path / "bomb.png"
    out["bomb.png"].write_bytes(png_claiming(30000, 30000, bit_depth=1))
    out["photo.png"] = tmp_path / "photo.png"  # a colour image that is not a mask
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(out["photo.png"])
    projects = hostile_projects(tmp_path / "projects")
    for k in ("models_list", "manifest_deep", "history_8000sq", "encrypted"):
        out[f"{k}.msproj"] = projects[k]
    return out


def test_gui_screenshot_exits_with_the_error_for_any_bad_file(tmp_path, qapp, settings, private_tmp, capsys,
                                                               monkeypatch):
    from maskstudio.cli.main import main
    from maskstudio.ui import dialogs

    monkeypatch.setenv("MASKSTUDIO_MODELS_DIR", str(settings.models_dir))
    previous = dialogs.set_handler(None)  # real dialogs: a modal one would hang this test
    try:
        _run_all(tmp_path, private_tmp, capsys, main)
    finally:
        dialogs.set_handler(previous)


def _run_all(tmp_path, private_tmp, capsys, main):
    shot = tmp_path / "shot.png"
    for name, path in _files(tmp_path).items():
        for argv in (["gui", str(path), "--screenshot", str(shot)],
                     *([["gui", "--project", str(path), "--screenshot", str(shot)]] if name.endswith(".msproj") else [])):
            code = main(argv)
            err = capsys.readouterr().err
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2, (argv, err)
            assert lines and lines[-1].startswith("maskstudio: error: ") and path.name in lines[-1], (argv, err)
            assert "Traceback" not in err
            assert list(private_tmp.iterdir()) == [], f"{argv}: left {list(private_tmp.iterdir())}"
            assert not shot.exists()
