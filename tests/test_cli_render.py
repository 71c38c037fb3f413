"""``maskstudio render``: same pixels as the engine, batch folders, one-line errors."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine_models as em
from maskstudio.cli.main import main
from maskstudio.engine import DualParams, Engine, RenderRequest
from maskstudio.settings import Settings

SIZE = 64


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-models")
    em.write_dmn(d)
    em.write_psp(d)
    em.write_stylegan(d)
    em.write_dual(d)
    em.write_boundary(d, "age", space="w")
    return d


@pytest.fixture
def env(models_dir, tmp_path, monkeypatch):
    """Point the CLI at the tiny models and at an empty shipped folder (so no shipped face parser)."""
    monkeypatch.setenv("MASKSTUDIO_MODELS_DIR", str(models_dir))
    empty = tmp_path / "no-shipped"
    orig = Settings.from_env.__func__

    def from_env(cls, **overrides):
        return dataclasses.replace(orig(cls, **overrides), shipped_checkpoints=empty)

    monkeypatch.setattr(Settings, "from_env", classmethod(from_env))
    return Settings.from_env(device="cpu")


@pytest.fixture
def files(tmp_path):
    labels, image = em.face_inputs(SIZE)
    mask = tmp_path / "m.png"
    Image.fromarray(labels).save(mask)
    ex = tmp_path / "ex.png"
    Image.fromarray(image).save(ex)
    exm = tmp_path / "ex_labels.png"
    Image.fromarray(labels).save(exm)
    return mask, ex, exm


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("maskstudio: error: ")
    return lines[0]


def _engine_image(env, mask, ex, exm, **kw) -> tuple[np.ndarray, RenderRequest]:
    from maskstudio.cli.cmd_render import load_exemplar, read_labels

    req = RenderRequest(read_labels(mask), load_exemplar(ex, exm), size_px=SIZE, **kw)
    with Engine(env, start_worker=False) as eng:
        r = eng.render_sync(req)
    assert r.ok, r.error
    return r.image, r


def test_render_matches_engine_pixel_for_pixel(env, files, tmp_path):
    mask, ex, exm = files
    out = tmp_path / "out.png"
    assert main(["render", "--mask", str(mask), "--exemplar", str(ex), "--exemplar-mask", str(exm),
                 "--size", str(SIZE), "--device", "cpu", "-o", str(out)]) == 0
    got = np.asarray(Image.open(out).convert("RGB"))
    expect, _ = _engine_image(env, mask, ex, exm)
    assert got.shape == (SIZE, SIZE, 3) and np.array_equal(got, expect)


def test_render_dual_with_edit_and_latent(env, files, tmp_path):
    mask, ex, exm = files
    out, lat = tmp_path / "dual.png", tmp_path / "w.npy"
    w = ",".join(["0.5"] * 8)
    assert main(["render", "--mask", str(mask), "--exemplar", str(ex), "--exemplar-mask", str(exm),
                 "--size", str(SIZE), "--edit", "age_w_boundary=1.5", "--dual", "dual_tiny:style1",
                 "--weights", w, "-o", str(out), "--save-latent", str(lat)]) == 0
    expect, r = _engine_image(env, mask, ex, exm, output="dual", edits={"age_w_boundary": 1.5},
                              dual=DualParams("dual_tiny", "style1", (0.5,) * 8), want_latent=True)
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), expect)
    saved = np.load(lat)
    assert saved.shape == (1, em.N_LATENT, em.SG_DIM) and saved.dtype == np.float32
    assert np.array_equal(saved, r.latent)


def test_sibling_mask_is_used_for_the_exemplar(env, files, tmp_path):
    mask, ex, exm = files
    exm.rename(ex.with_name("ex.mask.png"))
    out = tmp_path / "o.png"
    assert main(["render", "--mask", str(mask), "--exemplar", str(ex), "--size", str(SIZE), "-o", str(out)]) == 0
    assert out.is_file()


def test_batch_folder_with_progress(env, files, tmp_path, capsys):
    mask, ex, exm = files
    folder = tmp_path / "masks"
    folder.mkdir()
    labels = np.asarray(Image.open(mask))
    for i in range(3):
        m = labels.copy()
        m[5 * i:5 * i + 4, :] = 13
        Image.fromarray(m).save(folder / f"face{i}.png")
    outdir, latdir = tmp_path / "renders", tmp_path / "latents"
    assert main(["render", "--mask", str(folder), "--exemplar", str(ex), "--exemplar-mask", str(exm),
                 "--size", str(SIZE), "--output", "photo", "-o", str(outdir), "--save-latent", str(latdir)]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["face0.png", "face1.png", "face2.png"]
    assert sorted(p.name for p in latdir.iterdir()) == ["face0.npy", "face1.npy", "face2.npy"]
    err = capsys.readouterr().err
    assert "3/3" in err and "Traceback" not in err


def test_several_mask_files_batch_like_a_folder(env, files, tmp_path, capsys):
    """``--mask a.png b.png`` (what a shell glob gives) renders each into the -o folder."""
    mask, ex, exm = files
    labels = np.asarray(Image.open(mask))
    paths = []
    for i in range(2):
        m = labels.copy()
        m[6 * i:6 * i + 5, :] = 13
        paths.append(tmp_path / f"g{i}.png")
        Image.fromarray(m).save(paths[-1])
    outdir = tmp_path / "renders"
    assert main(["render", "--mask", *map(str, paths), "--exemplar", str(ex), "--exemplar-mask", str(exm),
                 "--size", str(SIZE), "-o", str(outdir)]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["g0.png", "g1.png"]
    for p in paths:   # the same pixels as a single render of that mask
        expect, _ = _engine_image(env, p, ex, exm)
        assert np.array_equal(np.asarray(Image.open(outdir / p.name).convert("RGB")), expect)
    assert "2/2" in capsys.readouterr().err
    # a missing one is named before any model loads; a .png -o is refused for several masks
    assert main(["render", "--mask", str(paths[0]), str(tmp_path / "nope.png"), "--exemplar", str(ex),
                 "--exemplar-mask", str(exm), "-o", str(outdir)]) == 2
    assert "nope.png: no such file" in one_error_line(capsys)
    assert main(["render", "--mask", *map(str, paths), "--exemplar", str(ex), "--exemplar-mask", str(exm),
                 "-o", str(tmp_path / "one.png")]) == 2
    assert "-o must be a folder" in one_error_line(capsys)


def test_batch_reports_bad_files_and_exits_nonzero(env, files, tmp_path, capsys):
    mask, ex, exm = files
    folder = tmp_path / "masks"
    folder.mkdir()
    Image.open(mask).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"not a png")
    outdir = tmp_path / "renders"
    assert main(["render", "--mask", str(folder), "--exemplar", str(ex), "--exemplar-mask", str(exm),
                 "--size", str(SIZE), "-o", str(outdir)]) == 2
    assert (outdir / "good.png").is_file() and not (outdir / "broken.png").exists()
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 of 2 masks failed" in err and "Traceback" not in err


def test_render_dual_official_options(env, files, tmp_path):
    mask, ex, exm = files
    out = tmp_path / "dual.png"
    assert main(["render", "--mask", str(mask), "--exemplar", str(ex), "--exemplar-mask", str(exm),
                 "--size", str(SIZE), "--dual", "dual_tiny:1", "--truncation", "0.5", "--preserve-color",
                 "-o", str(out)]) == 0
    expect, _ = _engine_image(env, mask, ex, exm, output="dual",
                              dual=DualParams("dual_tiny", "1", truncation=0.5, preserve_color=True))
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), expect)
    plain, _ = _engine_image(env, mask, ex, exm, output="dual", dual=DualParams("dual_tiny", "1"))
    assert not np.array_equal(plain, expect)


@pytest.mark.parametrize("case", ["missing-mask", "bad-mask", "missing-exemplar", "no-exemplar-mask",
                                  "bad-edit", "unknown-boundary", "unknown-dual", "weights-without-dual",
                                  "truncation-without-dual", "no-wplus-encoder", "cuda", "bad-size", "bad-strength"])
def test_clear_one_line_errors(env, files, tmp_path, capsys, case):
    mask, ex, exm = files
    out = tmp_path / "o.png"
    base = ["render", "--mask", str(mask), "--exemplar", str(ex), "--exemplar-mask", str(exm),
            "--size", str(SIZE), "-o", str(out)]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    args, expect = {
        "missing-mask": (["--mask", str(tmp_path / "nope.png")], "nope.png: no such file"),
        "bad-mask": (["--mask", str(bad)], "bad.png"),
        "missing-exemplar": (["--exemplar", str(tmp_path / "noex.jpg")], "noex.jpg: no such file"),
        "no-exemplar-mask": (None, "no face parser is installed"),
        "bad-edit": (["--edit", "age"], "expected NAME=VALUE"),
        "unknown-boundary": (["--edit", "Smiling=1"], "unknown boundary 'Smiling'"),
        "unknown-dual": (["--dual", "cartoon"], "model 'cartoon' is not installed"),
        "weights-without-dual": (["--weights", "1,2"], "--weights needs --dual"),
        "truncation-without-dual": (["--truncation", "0.5"], "--truncation needs --dual"),
        "no-wplus-encoder": (["--dual", "dual_tiny", "--wplus"], "needs a W+ pSp encoder"),
        "cuda": (["--device", "cuda"], "no usable CUDA"),
        "bad-size": (["--size", "5"], "--size must be in 32..4096"),
        "bad-strength": (["--agile", "x:2"], "strength must be in [0, 1]"),
    }[case]
    if case == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    argv = list(base)
    if case == "no-exemplar-mask":
        i = argv.index("--exemplar-mask")
        del argv[i:i + 2]
    else:
        for k in range(0, len(args), 2):
            if args[k] in argv:
                argv[argv.index(args[k]) + 1] = args[k + 1]
            else:
                argv += args[k:k + 2]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert expect in line, line
    assert not out.exists()


def test_render_subprocess_error_has_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "maskstudio", "render", "--mask", str(tmp_path / "x.png"),
                        "--exemplar", str(tmp_path / "e.png"), "-o", str(tmp_path / "o.png")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "x.png: no such file" in r.stderr


def test_bench_runs_and_writes_json(env, tmp_path, capsys):
    """Smoke test of `maskstudio bench` on the installed tiny DMN (no timing is asserted)."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--device", "cpu", "--quick", "--skip-official", "--skip-latent", "--json", str(out)]) == 0
    import json

    data = json.loads(out.read_text())
    (dmn,) = data["dmn"]
    assert dmn["model"] == "dmn_tiny" and dmn["note"].startswith("installed")
    assert set(dmn["sizes"]) == {"256", "512"}
    for entry in dmn["sizes"].values():
        assert entry["engine"]["n"] >= 4 and entry["naive"]["n"] >= 2 and entry["speedup_p50"] > 0
    assert dmn["style_encodings"] == 1  # one exemplar: encoded once for every stroke and size
    assert "speed-up" in capsys.readouterr().out


@pytest.mark.parametrize("rank", [0, 1])
def test_batch_folder_is_sharded_across_torchrun_ranks(env, files, tmp_path, capsys, monkeypatch, rank):
    mask, ex, exm = files
    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(3):
        Image.open(mask).save(folder / f"face{i}.png")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    outdir = tmp_path / "renders"
    assert main(["render", "--mask", str(folder), "--exemplar", str(ex), "--exemplar-mask", str(exm),
                 "--size", str(SIZE), "-o", str(outdir)]) == 0
    want = [["face0.png", "face2.png"], ["face1.png"]][rank]  # rank r takes files r, r+2, ...
    assert sorted(p.name for p in outdir.iterdir()) == want
    assert f"{len(want)}/{len(want)}" in capsys.readouterr().err


def test_bench_photo_section_is_skipped_without_a_face_parser(env, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--device", "cpu", "--quick", "--photo-only", "--json", str(out)]) == 0
    import json

    data = json.loads(out.read_text())
    assert data["photo"] == [] and "parser" in data["photo_skipped"]
    assert "photo editing: skipped" in capsys.readouterr().out
