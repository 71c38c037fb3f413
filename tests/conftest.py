import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real faces, never committed); tests that need it skip when absent."""
    if not (DATA / "celebamask_pairs" / "masks").is_dir():
        pytest.skip(f"real face data not present at {DATA}")
    return DATA


@pytest.fixture(autouse=True)
def _isolated_models_dir(tmp_path_factory, monkeypatch):
    """Tests never touch the user's real model folder."""
    monkeypatch.setenv("MASKSTUDIO_MODELS_DIR", str(tmp_path_factory.getbasetemp() / "user-models"))
