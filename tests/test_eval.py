"""Metrics on hand-made masks (numbers worked out by hand) and the eval CLI end to end."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from maskstudio.training.metrics import ConfusionMatrix, SegScores, psnr


def test_f1_iou_accuracy_on_hand_made_masks():
    true = np.array([[0, 0, 1, 1],
                     [0, 0, 1, 1],
                     [2, 2, 1, 1],
                     [2, 2, 4, 4]], np.uint8)
    pred = np.array([[0, 0, 1, 1],
                     [0, 1, 1, 1],
                     [2, 2, 2, 1],
                     [2, 2, 5, 4]], np.uint8)
    cm = ConfusionMatrix()
    cm.update(true, pred)
    s = cm.scores()
    # class 0: TP 3, FN 1 (->1), FP 0 : F1 = 6/7, IoU 3/4
    assert s.f1[0] == pytest.approx(6 / 7) and s.iou[0] == pytest.approx(3 / 4)
    # class 1: TP 5, FP 1, FN 1 : F1 = 10/12, IoU 5/7
    assert s.f1[1] == pytest.approx(10 / 12) and s.iou[1] == pytest.approx(5 / 7)
    # class 2: TP 4, FP 1, FN 0 : F1 = 8/9, IoU 4/5
    assert s.f1[2] == pytest.approx(8 / 9) and s.iou[2] == pytest.approx(4 / 5)
    # class 4: TP 1, FN 1 : F1 = 2/3 ; class 5: FP 1 only : F1 = 0
    assert s.f1[4] == pytest.approx(2 / 3) and s.f1[5] == 0.0
    # absent classes are undefined and excluded from the means
    assert math.isnan(s.f1[3]) and math.isnan(s.iou[18])
    assert s.mean_f1 == pytest.approx(np.mean([10 / 12, 8 / 9, 2 / 3, 0.0]))
    assert s.miou == pytest.approx(np.mean([3 / 4, 5 / 7, 4 / 5, 1 / 2, 0.0]))
    assert s.pixel_acc == pytest.approx(13 / 16)
    d = s.to_dict()
    assert d["per_class"]["l_eye"]["f1"] == pytest.approx(0.6667, abs=1e-4)
    assert d["per_class"]["eye_g"]["f1"] is None
    assert "mean F1" in s.table() and "without" in s.table()


def test_counts_accumulate_over_images_not_averaged():
    cm = ConfusionMatrix()
    cm.update(np.array([[1, 1, 1, 1]]), np.array([[1, 1, 1, 1]]))  # 4 TP
    cm.update(np.array([[1, 0]]), np.array([[0, 0]]))              # 1 FN
    s = cm.scores()
    assert s.f1[1] == pytest.approx(8 / 9)  # pooled, not mean of per-image F1 (1.0 and 0.0)
    assert s.support[1] == 5
    assert isinstance(SegScores.from_matrix(cm.matrix), SegScores)


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    assert psnr(a, b) == float("inf")
    b[:] = 255
    assert psnr(a, b) == pytest.approx(0.0)
    b[:] = 16  # mse 256 -> 10 log10(255² / 256)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 256))


def _write_pairs(root, n=4, size=64):
    from tests.training_fixtures import synthetic_mask, synthetic_photo

    rng = np.random.default_rng(5)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        m = synthetic_mask(size, rng)
        Image.fromarray(synthetic_photo(m, rng)).save(root / "images" / f"f{i}.png")
        Image.fromarray(m, mode="L").save(root / "masks" / f"f{i}.png")
    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(root / "images" / "no_mask.png")
    return root


def test_cli_eval_parser_matches_a_direct_computation(tmp_path, capsys):
    from maskstudio.cli.main import main
    from maskstudio.models.checkpoints import save_checkpoint
    from maskstudio.models.face_parser import FaceParser, FaceParserConfig, parse_image
    from maskstudio.training.data import read_labels, read_rgb
    from tests.training_fixtures import TINY_PARSER

    root = _write_pairs(tmp_path / "d")
    torch.manual_seed(0)
    m = FaceParser(FaceParserConfig(**TINY_PARSER, input_size=64)).eval()
    save_checkpoint(tmp_path / "p", m, "face_parser", m.cfg)
    js = tmp_path / "scores.json"
    rc = main(["eval", "parser", "--images", str(root / "images"), "--masks", str(root / "masks"),
               "--parser", str(tmp_path / "p.safetensors"), "--device", "cpu", "--json", str(js)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "4 image/mask pairs" in out and "pixel accuracy" in out and "mIoU" in out
    cm = ConfusionMatrix()
    for i in range(4):
        cm.update(read_labels(root / "masks" / f"f{i}.png"), parse_image(m, read_rgb(root / "images" / f"f{i}.png")))
    expected = cm.scores().to_dict()
    got = json.loads(js.read_text())
    assert got["count"] == 4
    assert got["pixel_acc"] == expected["pixel_acc"] and got["per_class"] == expected["per_class"]


def test_cli_eval_dmn_reports_both_exemplar_modes(tmp_path, capsys):
    from maskstudio.cli.main import main
    from maskstudio.models.checkpoints import save_checkpoint
    from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork
    from maskstudio.models.face_parser import FaceParser, FaceParserConfig
    from tests.training_fixtures import TINY_PARSER

    root = _write_pairs(tmp_path / "d")
    torch.manual_seed(0)
    p = FaceParser(FaceParserConfig(**TINY_PARSER, input_size=64)).eval()
    save_checkpoint(tmp_path / "p", p, "face_parser", p.cfg)
    g = DenseMappingNetwork(DenseMappingConfig(ngf=4, n_downsample=2, n_blocks=1))
    save_checkpoint(tmp_path / "g", g, "maskgan_dmn", g.cfg)
    js = tmp_path / "dmn.json"
    rc = main(["eval", "dmn", "--images", str(root / "images"), "--masks", str(root / "masks"),
               "--parser", str(tmp_path / "p.safetensors"), "--dmn", str(tmp_path / "g.safetensors"),
               "--size", "64", "--device", "cpu", "--json", str(js)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "own exemplar" in out and "different exemplar" in out and "PSNR" in out
    d = json.loads(js.read_text())
    assert d["count"] == 4 and d["size"] == 64
    assert 0.0 <= d["own_exemplar"]["l1"] <= 1.0
    assert d["other_exemplar"]["parse"]["miou"] is not None
    # texture side by side: renders (both modes) and the real photos, at 256²
    tex = d["texture"]
    assert tex["size"] == 256 and tex["real_photos"]["count"] == 4
    for key in ("own_exemplar", "other_exemplar"):
        assert np.isfinite(tex[key]["checkerboard_db"]) and tex[key]["sharpness_ratio"] > 0
        assert set(tex[key]["checkerboard_db_by_period"]) == {"2px", "4px", "8px", "16px"}
    assert "sharpness_ratio" not in tex["real_photos"]
    assert "checkerboard dB" in out and "real photos:" in out


def test_evaluate_dmn_pairs_every_mask_with_another_exemplar():
    from maskstudio.training.evaluate import evaluate_dmn

    calls = []

    class FakeG(torch.nn.Module):  # records which exemplar each mask is rendered with
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.cfg = type("C", (), {"label_nc": 19})()

        def encode_style(self, roh, rimg):
            return rimg[:, :1, :1, :1]

        def generate(self, oh, style):
            calls.append(style.flatten().tolist())
            return style.expand(oh.shape[0], 3, oh.shape[2], oh.shape[3]).clone()

    class ConstParser(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.cfg = type("C", (), {"input_size": 8})()

        def forward(self, x):
            return torch.zeros(x.shape[0], 19, *x.shape[-2:])

    n = 5
    images = np.zeros((n, 8, 8, 3), np.uint8)
    for i in range(n):
        images[i] = i * 40  # exemplar identity encoded in its intensity
    masks = np.zeros((n, 8, 8), np.uint8)
    scores = evaluate_dmn(FakeG(), ConstParser(), images, masks, batch_size=n)
    own, other = calls
    own_ids = [round((v + 1) * 127.5 / 40) for v in own]
    other_ids = [round((v + 1) * 127.5 / 40) for v in other]
    assert own_ids == list(range(n))
    assert all(o != i for i, o in enumerate(other_ids)) and sorted(other_ids) == list(range(n))
    assert scores.count == n and scores.psnr_db == float("inf")  # own renders reproduce the photo
