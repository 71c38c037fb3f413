"""Model manager (maskstudio.io.store, .download, .convert, .registry): downloads from a real HTTP server on 127.0.0.1,
imports of official-layout files written by our own networks, refusals with clear messages."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

import model_files as mf
from model_http import serve
from maskstudio.errors import (
    CheckpointError,
    ConfigError,
    DiskSpaceError,
    DownloadCancelled,
    DownloadError,
    LatentFileError,
)
from maskstudio.files import sha256_file
from maskstudio.io.registry import load_registry
from maskstudio.io.store import INSTALL_RECORD, ModelStore
from maskstudio.models.checkpoints import load_checkpoint

BASE = load_registry()
SG = "stylegan2_ffhq_1024"


def make_store(tmp_path: Path, changes: dict | None = None, **kw) -> ModelStore:
    kw.setdefault("retries", 2)
    kw.setdefault("retry_wait_s", 0.0)
    kw.setdefault("timeout_s", 5.0)
    return ModelStore(tmp_path / "models", registry=mf.tiny_registry(BASE, **(changes or {})),
                      shipped_dir=tmp_path / "shipped", **kw)


SG_FILE = "stylegan2-ffhq-config-f.pt"


def sg_store(tmp_path: Path, urls: list[str], *, file: dict | None = None, **kw) -> ModelStore:
    """:func:`make_store` whose stylegan2_ffhq_1024 downloads its one file from ``urls``; ``file``:
    more fields of that file's entry (``sha256``, ``size_bytes``); ``kw``: store settings."""
    return make_store(tmp_path, {SG: {"files": {SG_FILE: {"urls": urls, **(file or {})}}}}, **kw)


def sg_partial(store: ModelStore) -> Path:
    """Where the stylegan2 file's partial download lives (its folder created)."""
    part = store.models_dir / ".partial" / SG / f"{SG_FILE}.part"
    part.parent.mkdir(parents=True)
    return part


def assert_nothing_installed(store: ModelStore, mid: str) -> None:
    md = store.models_dir
    assert not (md / mid).exists(), "half-installed model left behind"
    if md.exists():
        assert {p.name for p in md.iterdir() if p.name.startswith(".")} <= {".partial", ".work"}
        work = md / ".work"
        leftovers = [p.name for p in work.iterdir() if p.is_dir()] if work.exists() else []
        assert leftovers == []
    assert not store.is_installed(mid)


def load_installed(store: ModelStore, mid: str):
    """The checkpoint the store installed for ``mid`` (``<models>/<mid>/<mid>.safetensors``), loaded."""
    return load_checkpoint(store.models_dir / mid / f"{mid}.safetensors")


def import_and_load(tmp_path: Path, mid: str, files: list[Path]):
    """``files`` imported as ``mid`` into a fresh store; returns ``(store, installed checkpoint)``."""
    store = make_store(tmp_path)
    store.import_files(mid, files)
    return store, load_installed(store, mid)


def sg_bytes(tmp_path: Path) -> tuple[bytes, torch.nn.Module]:
    path, module = mf.write_stylegan2(tmp_path / "stylegan2-ffhq-config-f.pt")
    return path.read_bytes(), module


def same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> None:
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    noise = [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)]
    with torch.no_grad():
        ia, _ = a([z], noise=noise, randomize_noise=False)
        ib, _ = b([z], noise=noise, randomize_noise=False)
    assert torch.equal(ia, ib)


# ----------------------------------------------------------------------------- downloads


def test_install_downloads_checks_converts_and_records(tmp_path):
    data, module = sg_bytes(tmp_path)
    with serve({"sg.pt": data}) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")], file={"sha256": mf.sha256(data), "size_bytes": len(data)})
        seen = []
        status = store.install(SG, progress=seen.append)
    folder = store.models_dir / SG
    assert status.state == "installed"
    assert sorted(p.name for p in folder.iterdir()) == [INSTALL_RECORD, f"{SG}.json", f"{SG}.safetensors"]
    rec = store.record(SG)
    assert rec["original_files"][0]["sha256"] == mf.sha256(data)
    assert rec["original_files"][0]["checksum_verified"] is True
    assert rec["original_files"][0]["source"] == srv.url("sg.pt")
    assert rec["files"][f"{SG}.safetensors"] == sha256_file(folder / f"{SG}.safetensors")
    stages = {p.stage for p in seen}
    assert {"download", "checksum", "convert", "done"} <= stages
    assert [p for p in seen if p.stage == "download"][-1].done == len(data)
    loaded = load_checkpoint(folder / f"{SG}.safetensors")
    assert loaded.arch == "stylegan2" and set(loaded.extras) == {"latent_avg"}
    same_outputs(module, loaded.module)
    assert not (store.models_dir / ".partial").exists()
    assert [r.ok for r in store.verify(SG)] == [True]


def test_engine_model_set_finds_installed_model(tmp_path):
    from maskstudio.engine.models import ModelSet

    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")])
        store.install(SG)
    ms = ModelSet([(store.models_dir, "user")])
    assert ms.get(SG).arch == "stylegan2"
    assert ms.load(SG).module is not None


def test_cut_off_download_resumes_with_range(tmp_path):
    data, _ = sg_bytes(tmp_path)
    half = len(data) // 2
    with serve({"sg.pt": data}, range_support=True, cut_after=half, cut_times=1) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")], file={"sha256": mf.sha256(data)})
        store.install(SG)
        reqs = srv.requests
    assert reqs[0] == ("sg.pt", None)
    assert reqs[1] == ("sg.pt", f"bytes={half}-"), reqs  # resumed, not restarted
    assert store.record(SG)["original_files"][0]["sha256"] == mf.sha256(data)


def test_server_without_range_restarts_and_completes(tmp_path):
    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}, range_support=False, cut_after=1000, cut_times=1) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")], file={"sha256": mf.sha256(data)})
        store.install(SG)
        assert len(srv.requests) == 2
    assert store.record(SG)["original_files"][0]["sha256"] == mf.sha256(data)


def test_download_always_cut_off_fails_clearly(tmp_path):
    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}, range_support=False, cut_after=len(data) // 3, cut_times=99) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")])
        with pytest.raises(DownloadError) as ei:
            store.install(SG)
    msg = str(ei.value)
    assert srv.url("sg.pt") in msg and "truncated" in msg and f"of {len(data)} bytes" in msg
    assert_nothing_installed(store, SG)


def test_no_network_is_a_clear_error(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/sg.pt"
    store = sg_store(tmp_path, [url], retries=1)
    with pytest.raises(DownloadError) as ei:
        store.install(SG)
    assert url in str(ei.value) and "no network" in str(ei.value) and "2 attempt" in str(ei.value)
    assert_nothing_installed(store, SG)


def test_http_404_is_not_retried(tmp_path):
    with serve({}) as srv:
        store = sg_store(tmp_path, [srv.url("gone.pt")])
        with pytest.raises(DownloadError, match="HTTP 404"):
            store.install(SG)
        assert len(srv.requests) == 1
    assert_nothing_installed(store, SG)


def test_timeout_is_retried_then_reported(tmp_path):
    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}, delay_s=1.0) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")], timeout_s=0.2, retries=1)
        with pytest.raises(DownloadError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.2 s"):
            store.install(SG)
        assert len(srv.requests) == 2
    assert_nothing_installed(store, SG)


def test_checksum_mismatch_deletes_download(tmp_path):
    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")], file={"sha256": "0" * 64})
        with pytest.raises(DownloadError, match="checksum mismatch"):
            store.install(SG)
    assert_nothing_installed(store, SG)
    assert not list((store.models_dir / ".partial").rglob("*.part"))


def test_no_disk_space_refused_before_writing(tmp_path):
    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")], free_bytes=lambda p: 4096)
        with pytest.raises(DiskSpaceError) as ei:
            store.install(SG)
    assert "not enough disk space" in str(ei.value) and "4.1 KB free" in str(ei.value)
    assert_nothing_installed(store, SG)
    assert not list(store.models_dir.rglob("*.part")) or all(p.stat().st_size == 0
                                                           for p in store.models_dir.rglob("*.part"))


def test_cancel_keeps_partial_and_a_later_install_resumes(tmp_path):
    module = mf.build_tiny("stylegan2")
    big = tmp_path / "big.pt"  # > 1 download chunk, so the cancel lands mid-file
    torch.save({"g_ema": module.state_dict(), "latent_avg": torch.randn(8), "pad": torch.randn(1 << 20)}, big)
    data = big.read_bytes()
    with serve({"sg.pt": data}) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")])
        calls = []

        def cancel():
            calls.append(1)
            return len(calls) > 2

        with pytest.raises(DownloadCancelled):
            store.install(SG, cancel=cancel)
        assert_nothing_installed(store, SG)
        part = store.models_dir / ".partial" / SG / f"{SG_FILE}.part"
        kept = part.stat().st_size
        assert 0 < kept < len(data)
        assert store.status(SG).partial_bytes == kept
        store.install(SG)
        assert srv.requests[-1] == ("sg.pt", f"bytes={kept}-")
    assert store.record(SG)["original_files"][0]["sha256"] == mf.sha256(data)


def test_install_of_manual_only_entry_points_to_import(tmp_path):
    store = make_store(tmp_path)
    with pytest.raises(ConfigError, match=r"download by hand from .*models import maskgan_dmn FILE"):
        store.install("maskgan_dmn")


def test_boundary_set_downloads_and_validates(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = mf.write_directions(src)
    with serve(files) as srv:
        store = make_store(tmp_path, {"e4e_directions": {"files": {n: {"urls": [srv.url(n)]} for n in files}}})
        store.install("e4e_directions")
    folder = store.models_dir / "e4e_directions"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*files, INSTALL_RECORD])
    from maskstudio.engine.models import ModelSet

    ms = ModelSet([(store.models_dir, "user")])
    assert {"age", "smile", "pose"} <= set(ms.boundaries)
    assert store.verify("e4e_directions")[0].ok


def test_downloaded_wrong_shape_direction_is_refused(tmp_path):
    bad = tmp_path / "age.pt"
    torch.save(torch.randn(3, 7), bad)
    with serve({"age.pt": bad.read_bytes()}) as srv:
        store = make_store(tmp_path, {"e4e_directions": {"files": {
            "age.pt": {"urls": [srv.url("age.pt")]}, "smile.pt": {"urls": []}, "pose.pt": {"urls": []}}}})
        store.registry["e4e_directions"] = type(store.registry["e4e_directions"])(
            **{**store.registry["e4e_directions"].__dict__,
               "files": tuple(f for f in store.registry["e4e_directions"].files if f.name == "age.pt")})
        with pytest.raises(DownloadError, match=r"shape \[3, 7\] is not a direction"):
            store.install("e4e_directions")
    assert_nothing_installed(store, "e4e_directions")


# ----------------------------------------------------------------------------- imports


def test_import_official_dmn_roundtrip(tmp_path):
    path, module = mf.write_dmn(tmp_path / "latest_net_G.pth")
    store, loaded = import_and_load(tmp_path, "maskgan_dmn", [path])
    rec = store.record("maskgan_dmn")
    assert rec["source"] == "import" and rec["original_files"][0]["sha256"] == sha256_file(path)
    assert rec["original_files"][0]["checksum_verified"] is False
    g = torch.Generator().manual_seed(0)
    lab = torch.randint(0, 19, (1, 32, 32), generator=g)
    from maskstudio.models.dense_mapping import one_hot

    oh = one_hot(lab)
    img = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        assert torch.equal(module(oh, oh, img), loaded.module(oh, oh, img))


def test_stylegan2_file_imported_as_dmn_is_refused(tmp_path):
    path, _ = mf.write_stylegan2(tmp_path / "stylegan2-ffhq-config-f.pt")
    store = make_store(tmp_path)
    with pytest.raises(CheckpointError) as ei:
        store.import_files("maskgan_dmn", [path])
    msg = str(ei.value)
    assert msg.startswith(str(path)) and "wrong file for maskgan_dmn" in msg
    assert "looks like a stylegan2 checkpoint" in msg and "stylegan2_ffhq_1024" in msg
    assert_nothing_installed(store, "maskgan_dmn")


def test_wrong_size_same_arch_is_refused_with_key_and_shapes(tmp_path):
    path, _ = mf.write_stylegan2(tmp_path / "sg.pt")
    reg = mf.tiny_registry(BASE)
    import dataclasses

    reg[SG] = dataclasses.replace(reg[SG], config={**mf.TINY["stylegan2"], "channels": {4: 16, 8: 16}})
    store = ModelStore(tmp_path / "models", registry=reg)
    with pytest.raises(CheckpointError, match=r"mis-shaped key\(s\), first 'input.input': file \(1, 8, 4, 4\) vs expected \(1, 16, 4, 4\)"):
        store.import_files(SG, [path])
    assert_nothing_installed(store, SG)


def test_malicious_pickle_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = mf.write_malicious(tmp_path / "latest_net_G.pth", marker)
    store = make_store(tmp_path)
    with pytest.raises(CheckpointError) as ei:
        store.import_files("maskgan_dmn", [path])
    assert str(path) in str(ei.value)
    assert not marker.exists()
    assert_nothing_installed(store, "maskgan_dmn")
    # the same file offered by a server
    with serve({"evil.pt": path.read_bytes()}) as srv:
        store = sg_store(tmp_path, [srv.url("evil.pt")])
        with pytest.raises(DownloadError, match="not usable"):
            store.install(SG)
    assert not marker.exists()
    assert_nothing_installed(store, SG)
    assert not (store.models_dir / ".partial" / SG).exists()


def test_truncated_file_import_is_refused(tmp_path):
    path, _ = mf.write_dmn(tmp_path / "latest_net_G.pth")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    store = make_store(tmp_path)
    with pytest.raises(CheckpointError, match=r"cut\.pth: .*truncated or corrupt"):
        store.import_files("maskgan_dmn", [cut])
    assert_nothing_installed(store, "maskgan_dmn")


def test_import_psp_encoder_state_dict_opts(tmp_path):
    path, module = mf.write_psp(tmp_path / "encoder.pt")
    store, loaded = import_and_load(tmp_path, "psp_encoder_zplus", [path])
    assert loaded.config["start_from_latent_avg"] is False  # taken from the file's opts
    assert loaded.extras["latent_avg"].shape == (4, 16)
    assert loaded.meta["opts"]["encoder_type"] == "GradualStyleEncoder"
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a, b = module.encoder(x), loaded.module.encoder(x)
    assert torch.equal(a, b)


def test_import_dualstylegan_style_with_codes(tmp_path):
    g, c, module = mf.write_dualstylegan(tmp_path)
    store, loaded = import_and_load(tmp_path, "dualstylegan_cartoon", [c, g])  # any order
    names = loaded.meta["exstyle_names"]
    assert names == sorted(["Cartoons_00038_07.jpg", "Cartoons_00002_01.jpg"])
    codes = np.load(c, allow_pickle=True).item()  # our own test file: safe to unpickle here
    for n in names:
        assert np.array_equal(loaded.extras[f"exstyle_code.{n}"].numpy(), codes[n])
    for k, v in module.state_dict().items():
        assert torch.equal(v, loaded.module.state_dict()[k]), k
    # the engine finds the codes by name
    from maskstudio.engine.models import ModelSet
    from maskstudio.engine.pipeline import Engine

    resident = ModelSet([(store.models_dir, "user")]).load("dualstylegan_cartoon")
    assert sorted(Engine.style_codes(resident)) == names


def test_dualstylegan_codes_of_the_wrong_size_are_refused(tmp_path):
    g, c, module = mf.write_dualstylegan(tmp_path)
    np.save(c, {"a.jpg": np.zeros((1, 18, 512), np.float32)}, allow_pickle=True)
    store = make_store(tmp_path)
    with pytest.raises(CheckpointError, match=r"style code 'a.jpg' has 18 rows, the generator of "
                                              r"dualstylegan_cartoon needs 4"):
        store.import_files("dualstylegan_cartoon", [g, c])
    assert_nothing_installed(store, "dualstylegan_cartoon")


def test_import_boundary_folder_and_bad_file(tmp_path):
    src = tmp_path / "boundaries"
    src.mkdir()
    np.save(src / "boundary_Smiling.npy", np.random.default_rng(0).standard_normal((1, 512)))
    np.save(src / "boundary_Young.npy", np.random.default_rng(1).standard_normal((1, 512)))
    store = make_store(tmp_path)
    store.import_files("interfacegan_stylegan2_ffhq", [src])
    assert store.verify("interfacegan_stylegan2_ffhq")[0].ok
    store.remove("interfacegan_stylegan2_ffhq")
    np.save(src / "boundary_Bad.npy", np.zeros((1, 300)))
    with pytest.raises(LatentFileError, match=r"boundary_Bad\.npy: shape \[1, 300\]"):
        store.import_files("interfacegan_stylegan2_ffhq", [src])
    assert_nothing_installed(store, "interfacegan_stylegan2_ffhq")


# ----------------------------------------------------------------------------- verify / remove / list


def test_verify_detects_modified_files_and_remove(tmp_path):
    path, _ = mf.write_dmn(tmp_path / "latest_net_G.pth")
    store = make_store(tmp_path)
    store.import_files("maskgan_dmn", [path])
    assert store.verify("maskgan_dmn")[0].ok
    st = store.models_dir / "maskgan_dmn" / "maskgan_dmn.safetensors"
    raw = bytearray(st.read_bytes())
    raw[-1] ^= 0xFF
    st.write_bytes(bytes(raw))
    res = store.verify("maskgan_dmn")[0]
    assert not res.ok and "sha256 differs from the install record" in res.problem and str(st) in res.problem
    with pytest.raises(ConfigError, match="already installed"):
        store.import_files("maskgan_dmn", [path])
    store.remove("maskgan_dmn")
    assert_nothing_installed(store, "maskgan_dmn")
    with pytest.raises(ConfigError, match="not installed"):
        store.remove("maskgan_dmn")


def test_force_reinstall_replaces_atomically(tmp_path):
    path, _ = mf.write_dmn(tmp_path / "latest_net_G.pth")
    store = make_store(tmp_path)
    store.import_files("maskgan_dmn", [path])
    first = store.record("maskgan_dmn")["installed_at"]
    store.import_files("maskgan_dmn", [path], force=True)
    assert store.verify("maskgan_dmn")[0].ok and store.record("maskgan_dmn")["installed_at"] >= first
    assert sorted(p.name for p in store.models_dir.iterdir()) == [".work", "maskgan_dmn"]
    assert [p.name for p in (store.models_dir / ".work").iterdir()] == ["maskgan_dmn.lock"]


def test_list_states_and_unknown_id(tmp_path):
    store = make_store(tmp_path)
    states = {s.id: s.state for s in store.list()}
    assert states["maskgan_dmn"] == "manual"
    assert states["dualstylegan_cartoon"] == "available"
    assert states["dmn_starter"] == "missing"  # tmp shipped dir is empty
    with pytest.raises(ConfigError, match="unknown model id 'nope'"):
        store.entry("nope")
    with pytest.raises(ConfigError, match="ships with MaskStudio"):
        store.remove("dmn_starter")


def test_second_installer_of_the_same_model_is_refused(tmp_path):
    path, _ = mf.write_dmn(tmp_path / "latest_net_G.pth")
    store = make_store(tmp_path)
    other = make_store(tmp_path)  # e.g. the CLI while the dialog installs
    with store._locked("maskgan_dmn"):
        with pytest.raises(ConfigError, match="another MaskStudio window or command is installing"):
            other.import_files("maskgan_dmn", [path])
    other.import_files("maskgan_dmn", [path])  # free again
    assert other.verify("maskgan_dmn")[0].ok


def test_staging_is_invisible_to_the_engine_scan(tmp_path, monkeypatch):
    """While a model is being assembled, ``<models_dir>/*/*.json`` finds nothing."""
    from maskstudio.engine.models import ModelSet

    path, _ = mf.write_dmn(tmp_path / "latest_net_G.pth")
    store = make_store(tmp_path)
    seen = {}
    real_move = store._move_into_place

    def spy(staging, final):
        seen["staging_json"] = sorted(p.name for p in staging.glob("*.json"))
        seen["scan"] = sorted(ModelSet([(store.models_dir, "user")]).models)
        real_move(staging, final)

    monkeypatch.setattr(store, "_move_into_place", spy)
    store.import_files("maskgan_dmn", [path])
    assert seen["staging_json"] == ["install.json", "maskgan_dmn.json"]
    assert seen["scan"] == []
    assert sorted(ModelSet([(store.models_dir, "user")]).models) == ["maskgan_dmn"]


def test_complete_partial_file_is_not_downloaded_again(tmp_path):
    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")])
        part = sg_partial(store)
        part.write_bytes(data)  # a previous run got everything, then stopped
        store.install(SG)
        assert srv.requests == [("sg.pt", f"bytes={len(data)}-")]  # answered 416, nothing re-sent
    assert store.verify(SG)[0].ok


def test_import_our_safetensors_checks_arch(tmp_path):
    from maskstudio.models.checkpoints import save_checkpoint

    m = mf.build_tiny("maskgan_dmn")
    save_checkpoint(tmp_path / "mine", m, "maskgan_dmn", mf.TINY["maskgan_dmn"])
    store = make_store(tmp_path)
    store.import_files("maskgan_dmn", [tmp_path / "mine.safetensors"])
    assert store.record("maskgan_dmn")["original_files"][0]["name"] == "latest_net_G.pth"
    loaded = load_installed(store, "maskgan_dmn")
    for k, v in m.state_dict().items():
        assert torch.equal(v, loaded.module.state_dict()[k]), k
    with pytest.raises(CheckpointError, match=r"mine\.safetensors: is a maskgan_dmn checkpoint, "
                                              r"stylegan2_ffhq_1024 needs stylegan2"):
        store.import_files(SG, [tmp_path / "mine.safetensors"])
    assert_nothing_installed(store, SG)


def test_second_mirror_is_used_when_the_first_fails(tmp_path):
    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}) as srv:
        store = sg_store(tmp_path, [srv.url("missing.pt"), srv.url("sg.pt")], file={"sha256": mf.sha256(data)})
        store.install(SG)
        assert [r[0] for r in srv.requests] == ["missing.pt", "sg.pt"]
    assert store.record(SG)["original_files"][0]["source"] == srv.url("sg.pt")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a device that is always full)")
def test_disk_full_while_writing_is_reported(tmp_path):
    """A real ENOSPC: the partial file is a link to /dev/full, every write fails."""
    data, _ = sg_bytes(tmp_path)
    with serve({"sg.pt": data}) as srv:
        store = sg_store(tmp_path, [srv.url("sg.pt")])
        part = sg_partial(store)
        part.symlink_to("/dev/full")
        with pytest.raises(DiskSpaceError, match="no space left on the device while writing stylegan2-ffhq-config-f.pt"):
            store.install(SG)
    assert_nothing_installed(store, SG)


def test_multi_file_install_keeps_completed_files_across_a_failure(tmp_path):
    g, c, _ = mf.write_dualstylegan(tmp_path)
    files = {"generator.pt": g.read_bytes(), "refined_exstyle_code.npy": c.read_bytes()}
    with serve(files) as srv:
        mid = "dualstylegan_cartoon"
        store = make_store(tmp_path, {mid: {"files": {n: {"urls": [srv.url(n)]} for n in files}}})
        srv.state["files"]["refined_exstyle_code.npy"] = None  # second file: 404 this time
        with pytest.raises(DownloadError, match="HTTP 404"):
            store.install(mid)
        assert_nothing_installed(store, mid)
        assert (store.models_dir / ".partial" / mid / "generator.pt").is_file()
        srv.state["files"]["refined_exstyle_code.npy"] = files["refined_exstyle_code.npy"]
        store.install(mid)
        names = [r[0] for r in srv.requests]
    assert names == ["generator.pt", "refined_exstyle_code.npy", "refined_exstyle_code.npy"]
    assert store.verify(mid)[0].ok


def test_refusals_before_any_work_leave_the_folder_untouched(tmp_path):
    store = make_store(tmp_path)
    for mid in ("maskgan_dmn", "dmn_starter"):
        with pytest.raises(ConfigError):
            store.install(mid)
    assert not store.models_dir.exists()
