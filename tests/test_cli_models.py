"""``maskstudio models ...`` end to end (real files, a real HTTP server on 127.0.0.1)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import model_files as mf
from model_http import serve
from maskstudio.cli.main import main
from maskstudio.models import registry as arch_registry


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_shows_states_device_and_folder(tmp_path, capsys):
    md = tmp_path / "models"
    rc, out, _ = run(capsys, "models", "list", "--models-dir", str(md))
    assert rc == 0
    assert f"models folder: {md}" in out and "device: cpu" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("maskgan_dmn "))
    assert "manual" in line and "CC BY-NC-SA 4.0" in line
    line = next(ln for ln in out.splitlines() if ln.startswith("e4e_directions "))
    assert "available" in line and "MIT" in line


def test_models_dir_from_environment_and_flag_position(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MASKSTUDIO_MODELS_DIR", str(tmp_path / "env-models"))
    rc, out, _ = run(capsys, "models", "list")
    assert rc == 0 and f"models folder: {tmp_path / 'env-models'}" in out
    rc, out, _ = run(capsys, "models", "--models-dir", str(tmp_path / "a"), "list")
    assert f"models folder: {tmp_path / 'a'}" in out
    rc, out, _ = run(capsys, "models", "--models-dir", str(tmp_path / "a"), "list", "--models-dir", str(tmp_path / "b"))
    assert f"models folder: {tmp_path / 'b'}" in out


def test_install_from_mirror_with_progress_then_verify_list_remove(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    files = mf.write_directions(src)
    md = str(tmp_path / "models")
    with serve(files) as srv:
        rc, out, err = run(capsys, "models", "install", "e4e_directions", "--models-dir", md,
                           *[f"--url={n}={srv.url(n)}" for n in files])
    assert rc == 0, err
    assert "installed e4e_directions" in out
    assert "download age.pt [" in err and "100.0%" in err  # the progress bar, on stderr
    assert "e4e_directions: licence MIT (https://github.com/omertov/encoder4editing" in err
    rc, out, _ = run(capsys, "models", "list", "--models-dir", md)
    assert "installed" in next(ln for ln in out.splitlines() if ln.startswith("e4e_directions "))
    rc, out, _ = run(capsys, "models", "verify", "e4e_directions", "--models-dir", md)
    assert rc == 0 and "ok      e4e_directions" in out
    rc, out, _ = run(capsys, "models", "remove", "e4e_directions", "--models-dir", md)
    assert rc == 0 and not (tmp_path / "models" / "e4e_directions").exists()


def test_install_errors_are_one_line(tmp_path, capsys):
    md = str(tmp_path / "models")
    rc, _, err = run(capsys, "models", "install", "maskgan_dmn", "--models-dir", md)
    assert rc == 2 and err.count("\n") == 1 and "download by hand" in err
    rc, _, err = run(capsys, "models", "install", "nope", "--models-dir", md)
    assert rc == 2 and "unknown model id 'nope'" in err
    with serve({}) as srv:
        rc, _, err = run(capsys, "models", "install", "e4e_directions", "--models-dir", md, "--no-progress",
                         f"--url=age.pt={srv.url('age.pt')}")
    assert rc == 2 and "HTTP 404" in err.splitlines()[-1]
    assert not (tmp_path / "models" / "e4e_directions").exists()


def test_import_wrong_file_for_id_is_refused(tmp_path, capsys):
    path, _ = mf.write_stylegan2(tmp_path / "stylegan2-ffhq-config-f.pt")
    md = tmp_path / "models"
    rc, _, err = run(capsys, "models", "import", "maskgan_dmn", str(path), "--models-dir", str(md))
    last = err.strip().splitlines()[-1]
    assert rc == 2 and last.startswith(f"maskstudio: error: {path}: wrong file for maskgan_dmn")
    assert "stylegan2" in last
    assert not (md / "maskgan_dmn").exists()


def test_import_malicious_pickle_refused(tmp_path, capsys):
    marker = tmp_path / "ran.txt"
    path = mf.write_malicious(tmp_path / "latest_net_G.pth", marker)
    rc, _, err = run(capsys, "models", "import", "maskgan_dmn", str(path), "--models-dir", str(tmp_path / "m"))
    assert rc == 2 and str(path) in err and not marker.exists()


def test_import_full_size_stylegan2_and_verify(tmp_path, capsys):
    """The registry's real 1024 px config: an official-layout file of that size imports and verifies."""
    from maskstudio.io.registry import load_registry

    entry = load_registry()["stylegan2_ffhq_1024"]
    torch.manual_seed(0)
    g = arch_registry.build("stylegan2", entry.config)
    path = tmp_path / "stylegan2-ffhq-config-f.pt"
    torch.save({"g_ema": g.state_dict(), "latent_avg": torch.randn(512)}, path)
    del g
    md = tmp_path / "models"
    rc, out, err = run(capsys, "models", "import", "stylegan2_ffhq_1024", str(path), "--models-dir", str(md))
    assert rc == 0, err
    assert "convert" in err
    rc, out, _ = run(capsys, "models", "verify", "--models-dir", str(md))
    assert "ok      stylegan2_ffhq_1024" in out
    rc, out, _ = run(capsys, "models", "info", "stylegan2_ffhq_1024", "--models-dir", str(md))
    assert "state: installed" in out and "171 keys" in out and "original stylegan2-ffhq-config-f.pt" in out


def test_verify_reports_damage_with_exit_1(tmp_path, capsys):
    src = tmp_path / "b"
    src.mkdir()
    np.save(src / "boundary_Smiling.npy", np.random.default_rng(0).standard_normal((1, 512)))
    md = tmp_path / "models"
    rc, _, err = run(capsys, "models", "import", "interfacegan_stylegan2_ffhq", str(src), "--models-dir", str(md))
    assert rc == 0, err
    np.save(md / "interfacegan_stylegan2_ffhq" / "boundary_Smiling.npy", np.zeros((1, 512)))
    rc, out, _ = run(capsys, "models", "verify", "interfacegan_stylegan2_ffhq", "--models-dir", str(md))
    assert rc == 1 and "FAILED  interfacegan_stylegan2_ffhq" in out and "sha256 differs" in out


def test_progress_bar_redraws_one_line_on_a_terminal():
    import io

    from maskstudio.cli.cmd_models import ProgressBar
    from maskstudio.io.download import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    s = Tty()
    bar = ProgressBar(s, width=10, min_interval_s=0)
    for done in (0, 500_000, 1_000_000):
        bar(Progress("download", "g.pt", done, 1_000_000))
    bar(Progress("convert", "dualstylegan_cartoon", 0, None, "checking keys and shapes"))
    bar.close()
    text = s.getvalue()
    lines = text.split("\n")
    assert lines[0].count("\r") == 3 and lines[0].endswith("[##########] 100.0% 1.0 MB / 1.0 MB\x1b[K")
    assert "[#####.....]  50.0%" in lines[0]
    assert "convert  dualstylegan_cartoon" in lines[1] and "checking keys and shapes" in lines[1]
    assert text.endswith("\n")


def test_list_marks_the_model_the_engine_uses(tmp_path, capsys):
    from maskstudio.settings import SHIPPED_CHECKPOINTS

    if not (SHIPPED_CHECKPOINTS / "face_parser.safetensors").is_file():
        pytest.skip("shipped face parser not present")
    rc, out, _ = run(capsys, "models", "list", "--models-dir", str(tmp_path / "m"))
    line = next(ln for ln in out.splitlines() if ln.startswith("face_parser "))
    assert "shipped" in line and " * " in line


def test_list_json(tmp_path, capsys):
    import json

    md = tmp_path / "models"
    rc, out, _ = run(capsys, "models", "list", "--json", "--role", "boundary-set", "--models-dir", str(md))
    doc = json.loads(out)
    assert rc == 0 and doc["models_dir"] == str(md) and doc["device"] == "cpu"
    assert [m["id"] for m in doc["models"]] == ["e4e_directions", "interfacegan_stylegan2_ffhq",
                                                "dmn_starter_boundaries"]
    assert doc["models"][0]["state"] == "available" and doc["models"][1]["state"] == "manual"
    assert doc["models"][2]["state"] == "shipped"  # the DMN style boundaries ship in checkpoints/
    rc, _, err = run(capsys, "models", "list", "--role", "painter", "--models-dir", str(md))
    assert rc == 2 and "no model has role 'painter'" in err
