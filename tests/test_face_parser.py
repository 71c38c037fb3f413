"""FaceParser: config, size budget, shapes, parse_image at any size, flip-TTA symmetry, save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from maskstudio.errors import ConfigError
from maskstudio.labels import flip_labels
from maskstudio.models.face_parser import (FaceParser, FaceParserConfig, count_parameters, parse_image,
                                           parse_probabilities)
from tests.training_fixtures import TINY_PARSER


def _tiny(input_size: int = 64) -> FaceParser:
    torch.manual_seed(0)
    m = FaceParser(FaceParserConfig(**TINY_PARSER, input_size=input_size))
    # non-trivial BN statistics so eval mode is not an identity-ish network
    m.train()
    with torch.no_grad():
        for _ in range(2):
            m(torch.rand(4, 3, input_size, input_size))
    return m.eval()


def test_default_config_is_within_the_5m_parameter_budget():
    m = FaceParser()
    assert count_parameters(m) <= 5_000_000
    out = m.eval()(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 19, 64, 64)


def test_config_round_trip_and_validation():
    cfg = FaceParserConfig(**TINY_PARSER, input_size=96)
    d = cfg.to_dict()
    assert FaceParserConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match="multiple of 32"):
        FaceParserConfig(input_size=100)
    with pytest.raises(ConfigError, match="unknown key"):
        FaceParserConfig.from_dict({**d, "bogus": 1})


def test_parse_image_any_size_returns_labels_at_input_size():
    m = _tiny()
    rng = np.random.default_rng(0)
    for h, w in ((64, 64), (101, 77), (200, 160)):
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        lab = parse_image(m, rgb)
        assert lab.shape == (h, w) and lab.dtype == np.uint8
        assert lab.max() < 19
        p = parse_probabilities(m, rgb)
        assert p.shape == (19, h, w)
        np.testing.assert_allclose(p.sum(0), 1.0, atol=1e-4)
    with pytest.raises(ConfigError):
        parse_image(m, rng.random((8, 8, 3)).astype(np.float32))


def test_flip_tta_is_mirror_equivariant_with_left_right_swap():
    m = _tiny()
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    p = parse_probabilities(m, rgb, flip_tta=True)
    p_mirror = parse_probabilities(m, np.ascontiguousarray(rgb[:, ::-1]), flip_tta=True)
    from maskstudio.labels import MIRROR_LUT

    # probabilities of the mirrored image = mirrored probabilities with l/r channels swapped
    np.testing.assert_allclose(p_mirror, p[MIRROR_LUT.astype(np.int64)][:, :, ::-1], atol=1e-5)
    lab = p.argmax(0).astype(np.uint8)
    np.testing.assert_array_equal(p_mirror.argmax(0).astype(np.uint8), flip_labels(lab))


def test_save_load_round_trip_through_checkpoint_files(tmp_path):
    from maskstudio.models.checkpoints import load_checkpoint, save_checkpoint

    m = _tiny()
    save_checkpoint(tmp_path / "p", m, "face_parser", m.cfg, dtype=torch.float16)
    loaded = load_checkpoint(tmp_path / "p.safetensors", dtype=torch.float32)
    assert isinstance(loaded.module, FaceParser) and loaded.module.cfg == m.cfg
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = m(x)
        b = loaded.module.eval()(x)
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.98  # fp16 storage


def test_cli_parse_writes_label_pngs_at_input_size(tmp_path, capsys):
    from PIL import Image

    from maskstudio.cli.main import main
    from maskstudio.io.masks import read_label_png
    from maskstudio.models.checkpoints import save_checkpoint

    m = _tiny()
    save_checkpoint(tmp_path / "parser", m, "face_parser", m.cfg)
    rng = np.random.default_rng(2)
    paths = []
    for i, (h, w) in enumerate(((80, 64), (64, 96))):
        p = tmp_path / f"img{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    out = tmp_path / "out"
    rc = main(["parse", *map(str, paths), "-o", str(out), "--parser", str(tmp_path / "parser.safetensors"),
               "--device", "cpu", "--color"])
    assert rc == 0
    for p, (h, w) in zip(paths, ((80, 64), (64, 96))):
        mask = read_label_png(out / f"{p.stem}.png", resize=False)
        assert mask.labels.shape == (h, w)
        assert (out / f"{p.stem}.color.png").is_file()
    rc = main(["parse", str(tmp_path / "missing.jpg"), "-o", str(out), "--parser",
               str(tmp_path / "parser.safetensors")])
    assert rc == 2
    assert "missing.jpg" in capsys.readouterr().err


def test_v4_preset_is_within_budget_and_runs_and_round_trips(tmp_path):
    from maskstudio.errors import ConfigError
    from maskstudio.models.checkpoints import load_checkpoint, save_checkpoint
    from maskstudio.models.face_parser import FaceParser, FaceParserConfig, count_parameters

    assert FaceParserConfig.preset("v3") == FaceParserConfig()
    cfg = FaceParserConfig.preset("v4", input_size=64)
    torch.manual_seed(0)
    m = FaceParser(cfg).eval()
    n = count_parameters(m)
    assert 4 * count_parameters(FaceParser()) < n <= 5_000_000
    with torch.no_grad():
        assert m(torch.rand(1, 3, 64, 64)).shape == (1, 19, 64, 64)
    save_checkpoint(tmp_path / "v4", m, "face_parser", cfg)
    assert load_checkpoint(tmp_path / "v4.safetensors").module.cfg == cfg
    with pytest.raises(ConfigError, match="unknown face parser preset"):
        FaceParserConfig.preset("v9")
