"""The Qt-free core stays Qt-free (import-linter contracts in pyproject.toml)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is a test dependency; install with .[test]")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_core_imports_without_qt():
    code = (
        "import sys, maskstudio.labels, maskstudio.errors, maskstudio.settings\n"
        "assert 'PySide6' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _contracts() -> list[dict]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _core_packages() -> set[str]:
    pkg = ROOT / "maskstudio"
    names = {p.name for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    names |= {p.stem for p in pkg.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return {f"maskstudio.{n}" for n in names} - {"maskstudio.ui"}


def test_qt_contract_covers_every_core_package_directly_and_indirectly():
    qt = next(c for c in _contracts() if c["name"].startswith("Qt only"))
    missing = _core_packages() - set(qt["source_modules"])
    assert not missing, f"add {sorted(missing)} to the Qt contract's source_modules"
    assert not qt.get("allow_indirect_imports", False), "indirect Qt imports must count"


def test_layers_contract_places_every_package():
    layers = next(c for c in _contracts() if c["type"] == "layers")
    placed = {m.strip() for layer in layers["layers"] for m in layer.split("|")}
    missing = (_core_packages() | {"maskstudio.ui"}) - placed
    assert not missing, f"place {sorted(missing)} in the layers contract"
