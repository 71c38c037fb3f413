"""``maskstudio render`` with the DMN style options, on the shipped models alone (starter DMN,
shipped DMN boundaries, gallery exemplars, template mask)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from maskstudio.cli.main import main
from maskstudio.io.style_files import read_style_latent
from maskstudio.settings import RESOURCES, SHIPPED_CHECKPOINTS

pytestmark = pytest.mark.skipif(not (SHIPPED_CHECKPOINTS / "dmn_boundaries").is_dir(),
                                reason="no shipped DMN boundaries")
MASK = RESOURCES / "sample" / "template_mask.png"
A = RESOURCES / "gallery" / "dmn_sample_01.png"
B = RESOURCES / "gallery" / "dmn_sample_04.png"


@pytest.fixture(autouse=True)
def only_shipped(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKSTUDIO_MODELS_DIR", str(tmp_path / "no-user-models"))


def render(tmp_path, name, *extra) -> np.ndarray:
    out = tmp_path / f"{name}.png"
    assert main(["render", "--mask", str(MASK), "--exemplar", str(A), "--size", "256", "--device", "cpu",
                 "-o", str(out), *extra]) == 0
    return np.asarray(Image.open(out).convert("RGB"))


def test_edit_region_style_and_style_latent_round_trip(tmp_path, capsys):
    plain = render(tmp_path, "plain")
    lighter = render(tmp_path, "light", "--edit", "hair_lightness=2")
    assert plain.shape == (256, 256, 3) and not np.array_equal(plain, lighter)
    mask = np.asarray(Image.open(MASK).resize((256, 256), Image.NEAREST))
    hair = mask == 13
    assert lighter[hair].mean() > plain[hair].mean() + 3   # lighter hair, measured inside the hair
    mixed = render(tmp_path, "mixed", "--edit", "hair_lightness=2", "--region-style", f"lips={B}",
                   "--save-latent", str(tmp_path / "look.npy"))
    lips = np.isin(mask, (11, 12))
    assert not np.array_equal(mixed[lips], lighter[lips]) and np.array_equal(mixed[mask == 0][:50], lighter[mask == 0][:50])
    lat = read_style_latent(tmp_path / "look.npy")
    assert lat.codes.shape == (2, 4096) and lat.rows == ((), ("u_lip", "l_lip"))
    assert lat.meta["dmn"]["id"] == "dmn_starter" and lat.meta["edits"] == {"hair_lightness": 2.0}
    again = render(tmp_path, "again", "--style-latent", str(tmp_path / "look.npy"))
    assert np.array_equal(again, mixed)


def test_bad_style_options_are_one_line_errors(tmp_path, capsys):
    out = tmp_path / "x.png"
    base = ["render", "--mask", str(MASK), "--exemplar", str(A), "--size", "64", "-o", str(out)]
    assert main(base + ["--region-style", f"fur={B}"]) == 2
    assert "unknown class or region" in capsys.readouterr().err
    assert main(base + ["--region-style", "hair"]) == 2
    assert "expected CLASS=IMAGE" in capsys.readouterr().err
    assert main(base + ["--style-latent", str(tmp_path / "missing.npy")]) == 2
    assert "missing.json: sidecar JSON not found" in capsys.readouterr().err
