"""``maskstudio mask convert|info|bench`` through the real entry point."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from maskstudio import labels as L
from maskstudio.cli.main import main
from maskstudio.io.masks import read_mask, write_label_png


def make_mask(shape=(40, 60)):
    lab = np.zeros(shape, np.uint8)
    lab[:, : shape[1] // 2] = L.index_of("skin")  # half skin
    lab[: shape[0] // 4, :] = L.index_of("hair")  # a quarter hair (over the skin)
    lab[-1, -1] = L.index_of("l_eye")
    return lab


def test_convert_label_to_color_and_back_keeps_size_and_values(tmp_path, capsys):
    lab = make_mask()
    src, col, back = tmp_path / "m.png", tmp_path / "m_color.png", tmp_path / "m_back.png"
    write_label_png(src, lab)
    assert main(["mask", "convert", str(src), str(col), "--format", "color"]) == 0
    with Image.open(col) as im:
        assert im.mode == "RGB" and im.size == (60, 40)
        np.testing.assert_array_equal(np.asarray(im), L.colorize(lab))
    assert main(["mask", "convert", str(col), str(back)]) == 0
    with Image.open(back) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), lab)
    out = capsys.readouterr().out
    assert "color PNG 60x40" in out and "label PNG 60x40" in out


def test_convert_sizes_and_part_folders(tmp_path):
    lab = make_mask()
    src = tmp_path / "m.png"
    write_label_png(src, lab)
    work = tmp_path / "w.png"
    assert main(["mask", "convert", str(src), str(work), "--size", "working"]) == 0
    assert read_mask(work, resize=False).labels.shape == (512, 512)
    assert main(["mask", "convert", str(work), str(tmp_path / "s.png"), "--size", "40x60"]) == 0
    np.testing.assert_array_equal(read_mask(tmp_path / "s.png", resize=False).labels, lab)
    parts = tmp_path / "parts"
    parts.mkdir()
    for cls in (1, 13):
        Image.fromarray(((lab == cls) * 255).astype(np.uint8)).save(parts / f"00012_{L.NAMES[cls]}.png")
    merged = tmp_path / "merged.png"
    assert main(["mask", "convert", str(parts), str(merged), "--id", "12"]) == 0
    expected = np.where(lab == L.index_of("l_eye"), 0, lab)  # no l_eye part file was written
    np.testing.assert_array_equal(read_mask(merged, resize=False).labels, expected)


def test_info_reports_size_classes_and_shares(tmp_path, capsys):
    lab = make_mask()
    src = tmp_path / "m.png"
    write_label_png(src, lab)
    assert main(["mask", "info", str(src)]) == 0
    text = capsys.readouterr().out
    assert "label mask, 60x40 px, 4 classes present" in text
    assert "hair" in text and "25.000%" in text  # the top quarter
    assert main(["mask", "info", str(src), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["width"], info["height"], info["format"]) == (60, 40, "label")
    shares = {c["name"]: c["share"] for c in info["classes"]}
    counts = np.bincount(lab.ravel(), minlength=19)
    assert set(shares) == {L.NAMES[i] for i in np.flatnonzero(counts)}
    for name, share in shares.items():
        assert share == pytest.approx(counts[L.index_of(name)] / lab.size)
    assert sum(shares.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["missing", "foreign", "values", "empty", "outdir"])
def test_errors_exit_nonzero_with_one_line(tmp_path, capsys, kind):
    src = tmp_path / "in.png"
    out = tmp_path / "out.png"
    if kind == "foreign":
        Image.fromarray(np.full((8, 8, 3), (1, 2, 250), np.uint8)).save(src)
    elif kind == "values":
        Image.fromarray(np.full((8, 8), 77, np.uint8)).save(src)
    elif kind == "empty":
        src.write_bytes(b"")
    elif kind == "outdir":
        write_label_png(src, make_mask())
        out = tmp_path / "no" / "out.png"
    rc = main(["mask", "convert", str(src), str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert str(out if kind == "outdir" else src) in lines[0]


def test_bench_runs_and_writes_json(tmp_path, capsys):
    report = tmp_path / "bench.json"
    assert main(["mask", "bench", "--repeat", "1", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    for name in ("stroke", "interactive_stroke", "add_point", "flood_fill_background", "undo_stroke"):
        assert data["results"][name]["median_ms"] > 0
    assert "stroke" in capsys.readouterr().out


def test_console_script_reports_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    r = subprocess.run([sys.executable, "-m", "maskstudio", "mask", "info", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr and "Traceback" not in r.stderr


def test_convert_round_trips_real_masks(shared_data, tmp_path):
    files = sorted((shared_data / "celebamask_pairs" / "masks").glob("*.png"))[:5]
    for f in files:
        col, back = tmp_path / "c.png", tmp_path / "b.png"
        assert main(["mask", "convert", str(f), str(col), "--format", "color"]) == 0
        assert main(["mask", "convert", str(col), str(back), "--format", "label"]) == 0
        with Image.open(f) as a, Image.open(back) as b:
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
