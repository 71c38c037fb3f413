"""Training end-to-end on tiny synthetic data: split, augmentation, loss goes down, resume."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from maskstudio.labels import MIRROR_LUT, flip_labels
from maskstudio.training.data import augment, find_pairs, flip_pair, load_pairs, split_stems
from tests.training_fixtures import TINY_PARSER, make_dataset


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("tinydata"), n=12, size=64, unlabeled=4)


def test_split_is_deterministic_disjoint_and_seeded():
    stems = [f"s{i:03d}" for i in range(100)]
    a = split_stems(stems, 0.1, seed=0)
    b = split_stems(list(reversed(stems)), 0.1, seed=0)
    c = split_stems(stems, 0.1, seed=1)
    assert a == b
    assert len(a["val"]) == 10 and len(a["train"]) == 90
    assert not set(a["train"]) & set(a["val"])
    assert set(a["train"]) | set(a["val"]) == set(stems)
    assert a["val"] != c["val"]


def test_flip_swaps_left_right_classes():
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, :3] = 255
    lab = np.zeros((4, 6), np.uint8)
    lab[:, 0] = 4   # l_eye at the image's left edge
    lab[:, 5] = 7   # r_brow at the right edge
    lab[:, 2] = 13  # hair: unpaired
    fi, fl = flip_pair(img, lab)
    assert (fi[:, 3:] == 255).all() and (fi[:, :3] == 0).all()
    assert (fl[:, 5] == 5).all()   # l_eye -> r_eye, now on the right
    assert (fl[:, 0] == 6).all()   # r_brow -> l_brow, now on the left
    assert (fl[:, 3] == 13).all()
    np.testing.assert_array_equal(fl, flip_labels(lab))


def test_augment_flip_keeps_image_and_labels_consistent():
    rng = np.random.default_rng(3)
    lab = np.zeros((8, 8), np.uint8)
    lab[:, :2] = 8  # l_ear on the left
    img = np.stack([lab * 10] * 3, -1).astype(np.uint8)
    flipped_seen = False
    for _ in range(20):
        i2, l2 = augment(img, lab, rng, flip=True)
        if l2[0, -1] != 0:
            flipped_seen = True
            assert (l2[:, -2:] == MIRROR_LUT[8]).all() and (i2[:, -2:, 0] == 80).all()
        else:
            np.testing.assert_array_equal(l2, lab)
    assert flipped_seen


def test_augment_rotation_moves_image_and_labels_together():
    # a bar of hair (13) right of centre; the image encodes each pixel's label in its colour
    lab = np.zeros((64, 64), np.uint8)
    lab[28:36, 36:60] = 13
    img = np.stack([lab * 10] * 3, -1).astype(np.uint8)
    rng = np.random.default_rng(0)
    rotated = 0
    for _ in range(20):
        i2, l2 = augment(img, lab, rng, flip=False, jitter=0.01, rotate=30.0)
        hair = l2 == 13
        assert hair.sum() > 100
        # labels follow the image: pixels labelled hair carry the hair colour, the rest does not
        # (the image is resampled bilinearly, so compare away from the bar's edges)
        core = hair & np.roll(hair, 1, 0) & np.roll(hair, -1, 0) & np.roll(hair, 1, 1) & np.roll(hair, -1, 1)
        assert (i2[core, 0] == 130).all()
        rows = np.nonzero(hair)[0]
        if rows.max() - rows.min() > 12:  # the 8-px-high bar now spans more rows: it was turned
            rotated += 1
    assert rotated >= 8  # |angle| > ~10 deg in about 2/3 of the draws


def test_augment_without_rotation_draws_the_same_numbers_as_before():
    img = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    lab = np.random.default_rng(2).integers(0, 19, (32, 32), dtype=np.uint8)
    a = augment(img, lab, np.random.default_rng(5), True, 0.08, 0.15)
    b = augment(img, lab, np.random.default_rng(5), True, 0.08, 0.15, rotate=0.0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_cache_round_trip(tiny_data, tmp_path):
    a = load_pairs(tiny_data, 32, tmp_path / "cache")
    assert list((tmp_path / "cache").glob("*.npy"))
    b = load_pairs(tiny_data, 32, tmp_path / "cache")  # second call reads the cache
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.images.shape == (12, 32, 32, 3) and a.masks.dtype == np.uint8
    assert a.stems == find_pairs(tiny_data).stems


def _parser_cfg(**kw):
    from maskstudio.training.parser_trainer import ParserTrainConfig

    base = dict(size=64, batch_size=4, epochs=20, lr=1e-2, warmup_steps=2, val_fraction=0.25,
                num_threads=1, save_every=3, model=TINY_PARSER, jitter=0.0, color=0.0)
    base.update(kw)
    return ParserTrainConfig(**base)


def test_parser_training_loss_decreases_and_writes_run(tiny_data, tmp_path):
    from maskstudio.models.checkpoints import load_checkpoint
    from maskstudio.training.parser_trainer import train_parser

    out = tmp_path / "run"
    summary = train_parser(tiny_data, out, _parser_cfg(max_steps=24), show_progress=False, log=lambda *a: None)
    assert summary["steps"] == 24
    assert np.mean(summary["last_losses"]) < 0.7 * np.mean(summary["first_losses"])
    split = json.loads((out / "split.json").read_text())
    assert len(split["val"]) == 3 and len(split["train"]) == 9
    loaded = load_checkpoint(out / "face_parser.safetensors")
    assert loaded.arch == "face_parser" and loaded.module.cfg.input_size == 64
    assert (out / "history.jsonl").read_text().strip()


def test_parser_resume_continues_where_it_stopped(tiny_data, tmp_path):
    from maskstudio.training.common import load_state
    from maskstudio.training.parser_trainer import train_parser

    quiet = dict(show_progress=False, log=lambda *a: None)
    straight = tmp_path / "straight"
    train_parser(tiny_data, straight, _parser_cfg(max_steps=8), **quiet)
    parts = tmp_path / "parts"
    train_parser(tiny_data, parts, _parser_cfg(max_steps=8), stop_at=5, **quiet)
    assert int(load_state(parts / "parser_state.pt")["step"]) == 5
    summary = train_parser(tiny_data, parts, _parser_cfg(max_steps=8), resume=True, **quiet)
    assert summary["steps"] == 8 and len(summary["first_losses"]) == 3  # only the 3 remaining steps ran
    a = load_state(straight / "parser_state.pt")["model"]
    b = load_state(parts / "parser_state.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def _dmn_cfg(**kw):
    from maskstudio.training.dmn_trainer import DMNTrainConfig

    base = dict(size=64, batch_size=2, steps=12, ngf=4, n_downsample=2, n_blocks=1, ndf=8, d_scales=2,
                lr=2e-3, val_fraction=0.25, num_threads=1, save_every=4, use_pseudo=True,
                pseudo_min_confidence=0.0, pseudo_max_uncertain=1.0)
    base.update(kw)
    return DMNTrainConfig(**base)


@pytest.fixture(scope="module")
def tiny_parser_ckpt(tiny_data, tmp_path_factory):
    from maskstudio.training.parser_trainer import train_parser

    out = tmp_path_factory.mktemp("parser_run")
    train_parser(tiny_data, out, _parser_cfg(max_steps=30), show_progress=False, log=lambda *a: None)
    return out / "face_parser.safetensors"


def test_dmn_training_reconstruction_improves_and_uses_pseudo_labels(tiny_data, tiny_parser_ckpt, tmp_path):
    from maskstudio.models.checkpoints import load_checkpoint
    from maskstudio.training.dmn_trainer import train_dmn

    out = tmp_path / "dmn"
    summary = train_dmn(tiny_data, out, _dmn_cfg(steps=30), parser_path=tiny_parser_ckpt,
                        show_progress=False, log=lambda *a: None)
    assert summary["steps"] == 30
    first = np.mean([r["l1"] for r in summary["first"]])
    last = np.mean([r["l1"] for r in summary["last"]])
    assert last < 0.8 * first, (first, last)
    for key in ("adv", "fm", "perc", "seg", "d"):
        assert key in summary["last"][0]
    info = json.loads((out / "pseudo_labels.json").read_text())
    assert info["unlabeled"] == 4 and 0 <= info["kept"] <= 4
    assert summary["pseudo_labels"] == info["kept"]
    loaded = load_checkpoint(out / "dmn.safetensors")
    assert loaded.arch == "maskgan_dmn" and loaded.module.cfg.ngf == 4


def test_dmn_resume_continues(tiny_data, tmp_path):
    from maskstudio.training.common import load_state
    from maskstudio.training.dmn_trainer import train_dmn

    quiet = dict(show_progress=False, log=lambda *a: None)
    out = tmp_path / "dmn"
    train_dmn(tiny_data, out, _dmn_cfg(steps=5, use_pseudo=False), stop_at=3, **quiet)
    g3 = load_state(out / "dmn_state.pt")["G"]
    summary = train_dmn(tiny_data, out, _dmn_cfg(steps=5, use_pseudo=False), resume=True, **quiet)
    assert summary["steps"] == 5 and len(summary["first"]) == 2
    state = load_state(out / "dmn_state.pt")
    assert int(state["step"]) == 5
    assert any(not torch.equal(g3[k], state["G"][k]) for k in g3 if g3[k].is_floating_point())


def test_cli_train_parser_runs(tiny_data, tmp_path, capsys):
    from maskstudio.cli.main import main

    out = tmp_path / "cli_run"
    rc = main(["train", "parser", "--data", str(tiny_data), "--out", str(out), "--size", "64",
               "--steps", "2", "--batch-size", "4", "--threads", "1", "--device", "cpu", "--no-progress"])
    assert rc == 0
    assert (out / "face_parser.safetensors").is_file() and (out / "summary.json").is_file()
    assert "val mean F1" in capsys.readouterr().out


def test_cli_train_rejects_bad_size(tiny_data, tmp_path, capsys):
    from maskstudio.cli.main import main

    rc = main(["train", "parser", "--data", str(tiny_data), "--out", str(tmp_path / "x"), "--size", "50"])
    assert rc == 2
    assert "multiple of 32" in capsys.readouterr().err


def test_dmn_lr_decay_schedule():
    from maskstudio.training.dmn_trainer import DMNTrainConfig

    flat = DMNTrainConfig(steps=100, lr=2e-4)
    assert flat.lr_at(0) == flat.lr_at(99) == 2e-4
    cfg = DMNTrainConfig(steps=100, lr=2e-4, decay_from=60)
    assert cfg.lr_at(59) == 2e-4 and cfg.lr_at(60) == 2e-4
    assert cfg.lr_at(80) == pytest.approx(1e-4)
    assert cfg.lr_at(99) == pytest.approx(2e-4 / 40)
    assert cfg.lr_at(100) == 0.0


def test_dmn_decay_tail_sets_lr_and_keeps_snapshots(tiny_data, tmp_path):
    from maskstudio.cli.main import main
    from maskstudio.models.checkpoints import load_checkpoint

    out = tmp_path / "dmn"
    rc = main(["train", "dmn", "--data", str(tiny_data), "--out", str(out), "--size", "64", "--ngf", "4",
               "--steps", "4", "--decay-from", "2", "--keep-every", "2", "--save-every", "2", "--lr", "1e-3",
               "--batch-size", "2", "--no-pseudo", "--threads", "1", "--device", "cpu", "--no-progress"])
    assert rc == 0
    hist = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [2, 4]
    assert hist[0]["lr"] == pytest.approx(1e-3) and hist[1]["lr"] == pytest.approx(0.5e-3)
    snaps = sorted(p.name for p in (out / "snapshots").glob("*.safetensors"))
    assert snaps == ["dmn_2.safetensors", "dmn_4.safetensors"]
    assert load_checkpoint(out / "snapshots" / "dmn_2.safetensors").meta["train"]["steps"] == 2


def test_cli_train_dmn_rejects_decay_after_the_end(tiny_data, tmp_path, capsys):
    from maskstudio.cli.main import main

    rc = main(["train", "dmn", "--data", str(tiny_data), "--out", str(tmp_path / "x"), "--steps", "10",
               "--decay-from", "10"])
    assert rc == 2
    assert "--decay-from 10" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ("--seg-weight", "--perc-weight", "--gan-from"))
def test_cli_train_dmn_rejects_a_negative_weight_or_step(tiny_data, tmp_path, capsys, flag):
    from maskstudio.cli.main import main

    rc = main(["train", "dmn", "--data", str(tiny_data), "--out", str(tmp_path / "x"), "--steps", "10",
               flag, "-1"])
    assert rc == 2
    assert f"{flag} -1" in capsys.readouterr().err


def test_parser_self_training_adds_confident_pseudo_labels(tiny_data, tiny_parser_ckpt, tmp_path):
    from maskstudio.training.parser_trainer import train_parser

    logs = []
    out = tmp_path / "student"
    # the tiny teacher does not find every face part: an open filter keeps all four faces
    cfg = _parser_cfg(max_steps=4, teacher=str(tiny_parser_ckpt), pseudo_min_confidence=0.0,
                      pseudo_max_uncertain=1.0, pseudo_require_parts=False)
    summary = train_parser(tiny_data, out, cfg, show_progress=False, log=logs.append)
    info = json.loads((out / "pseudo_labels.json").read_text())
    assert info["unlabeled"] == 4 and info["kept"] == 4 and summary["pseudo_labels"] == 4
    z = np.load(out / "pseudo_64.npz")
    assert z["labels"].shape == (4, 64, 64) and z["labels"].max() < 19 and (z["labels"] == 1).any()
    assert "pseudo-labels: 4 of 4 unlabeled faces pass the confidence filter" in logs
    split = json.loads((out / "split.json").read_text())
    n_train = len(split["train"])
    # the epoch covers the labelled train faces plus the kept pseudo-labelled ones
    assert any(f"{n_train} train + {info['kept']} pseudo-labelled" in str(m) for m in logs), logs
    # the default filter (face parts required) or a strict threshold keeps nothing; the run still
    # trains on the labelled pairs
    strict = _parser_cfg(max_steps=2, teacher=str(tiny_parser_ckpt), pseudo_max_uncertain=1.0,
                         pseudo_min_confidence=1.01, pseudo_require_parts=False)
    s2 = train_parser(tiny_data, tmp_path / "strict", strict, show_progress=False, log=lambda *a: None)
    assert s2["pseudo_labels"] == 0 and s2["steps"] == 2


def test_ship_exports_a_chosen_snapshot_as_fp16_with_a_card(tiny_data, tmp_path):
    from safetensors import safe_open

    from maskstudio.models.checkpoints import load_checkpoint
    from maskstudio.training.dmn_trainer import train_dmn
    from maskstudio.training.ship import main as ship_main

    run = tmp_path / "run"
    train_dmn(tiny_data, run, _dmn_cfg(steps=4, keep_every=2, use_pseudo=False), show_progress=False,
              log=lambda *a: None)
    ev = {"size": 64, "count": 3, "own_exemplar": {"parse": {"miou": 0.5, "mean_f1": 0.6}, "l1": 0.1, "psnr_db": 17.0},
          "other_exemplar": {"parse": {"miou": 0.45, "mean_f1": 0.55}}}
    (tmp_path / "ev.json").write_text(json.dumps(ev))
    out = tmp_path / "ckpt"
    out.mkdir()
    rc = ship_main(["dmn", "--run", str(run), "--eval", str(tmp_path / "ev.json"), "--out", str(out),
                    "--model", str(run / "snapshots" / "dmn_2.safetensors"), "--command", "maskstudio train dmn ..."])
    assert rc == 0
    with safe_open(str(out / "dmn_starter.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    shipped = load_checkpoint(out / "dmn_starter.safetensors")
    assert shipped.meta["train"]["steps"] == 2          # the snapshot, not the last step (4)
    assert shipped.meta["native_size_px"] == 64 and "pseudo" not in shipped.meta["data"]
    snap = load_checkpoint(run / "snapshots" / "dmn_2.safetensors", dtype=torch.float32).module.state_dict()
    for k, v in shipped.module.state_dict().items():
        torch.testing.assert_close(v.float(), snap[k], rtol=1e-2, atol=1e-3)
    card = (out / "dmn_starter.md").read_text()
    assert "non-commercial" in card and "maskstudio train dmn ..." in card and "| a different face | 0.4500 |" in card


def test_dmn_ema_weights_trail_the_raw_weights_and_survive_resume(tiny_data, tmp_path):
    from maskstudio.models.checkpoints import load_checkpoint
    from maskstudio.models.dense_mapping import DenseMappingNetwork
    from maskstudio.training.common import load_state
    from maskstudio.training.dmn_trainer import train_dmn

    quiet = dict(show_progress=False, log=lambda *a: None)
    out = tmp_path / "dmn"
    cfg = _dmn_cfg(steps=6, use_pseudo=False, ema_decay=0.5)
    train_dmn(tiny_data, out, cfg, stop_at=5, **quiet)
    s5 = load_state(out / "dmn_state.pt")
    train_dmn(tiny_data, out, cfg, resume=True, **quiet)   # one more step, from the saved average
    s6 = load_state(out / "dmn_state.pt")
    assert int(s6["step"]) == 6
    params = {n for n, _ in DenseMappingNetwork(cfg.model_config()).named_parameters()}
    for k, w in s6["G"].items():
        if k in params:   # ema_6 = 0.5 ema_5 + 0.5 w_6
            torch.testing.assert_close(s6["G_ema"][k], 0.5 * s5["G_ema"][k] + 0.5 * w, msg=k)
        else:             # buffers (BatchNorm statistics) are copied
            assert torch.equal(s6["G_ema"][k], w), k
    assert any(not torch.equal(s6["G"][k], s6["G_ema"][k]) for k in params)
    ema = load_checkpoint(out / "dmn_ema.safetensors")
    assert ema.arch == "maskgan_dmn" and ema.meta["train"]["ema_decay"] == 0.5
