"""checkpoints/registry.json: it loads, every entry is complete, every full-size config builds a
module (on the meta device: no memory) whose state_dict matches the declared layout, and the
SHA-256 of the shipped starter files is the one the registry records."""
from __future__ import annotations

import json
import re

import pytest
import torch

import parity_utils as pu
from maskstudio.engine.models import ROLE_ARCHS
from maskstudio.errors import ConfigError
from maskstudio.files import sha256_file
from maskstudio.io.registry import REGISTRY_PATH, load_registry
from maskstudio.roles import ENGINE_ROLE, ROLES
from maskstudio.models import registry as arch_registry

REG = load_registry()
MODELS = [e for e in REG.values() if not e.shipped and e.arch is not None]
SHIPPED = [e for e in REG.values() if e.shipped]

#: (arch, config matcher) -> parity spec folder + field with the official full-size listing
PARITY_LISTINGS = {
    "maskgan_dmn": ("maskgan_dmn_full", "full_size_keys"),
    "stylegan2": ("stylegan2", "full_size_1024_keys"),
    "dualstylegan": ("dualstylegan", "full_size_keys"),
    "agilegan_generator": ("agilegan_generator", "full_size_keys"),
    "psp_encoder": ("psp_encoder", "full_size_keys"),
    "agilegan_encoder": ("agilegan_encoder", "full_size_keys"),
}


def test_registry_loads_and_is_complete():
    raw = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    assert raw["format"] == 1 and len(REG) == len(raw["models"])
    roles = {e.role for e in REG.values()}
    assert roles == set(ROLES), f"every role has at least one entry; missing {set(ROLES) - roles}"
    for e in REG.values():
        assert e.title and e.licence_name, e.id
        assert e.source.get("page"), f"{e.id}: no source page"
        if e.arch is not None:
            assert e.arch in arch_registry.ARCHITECTURES, e.id
            assert e.arch in ROLE_ARCHS[ENGINE_ROLE[e.role]], f"{e.id}: engine cannot use role {e.role}"
        for f in e.files:
            for u in f.urls:
                assert u.startswith("https://"), f"{e.id}/{f.name}: {u}"
            assert f.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", f.sha256)
        if not e.shipped and not e.is_boundary_set:
            assert e.expected and {"keys", "parameters"} <= set(e.expected), e.id


@pytest.mark.parametrize("entry", MODELS, ids=[e.id for e in MODELS])
def test_full_config_builds_declared_layout(entry):
    with torch.device("meta"):
        module = arch_registry.build(entry.arch, entry.config)
    sd = module.state_dict()
    n_params = sum(p.numel() for p in module.parameters())
    assert len(sd) == entry.expected["keys"], f"{entry.id}: {len(sd)} keys"
    assert n_params == entry.expected["parameters"], f"{entry.id}: {n_params} parameters"
    # the config round-trips through the config class unchanged
    cfg = arch_registry.make_config(entry.arch, entry.config)
    again = arch_registry.config_to_dict(cfg)
    assert {k: again[k] for k in entry.config} == {k: (v if not isinstance(v, dict) else again[k])
                                                   for k, v in entry.config.items()}


@pytest.mark.parametrize("arch", sorted(PARITY_LISTINGS))
def test_full_config_matches_official_listing(arch):
    """Names and shapes equal the official full-size listings recorded by the parity fixtures."""
    folder, field = PARITY_LISTINGS[arch]
    spec_path = pu.parity_dir() / folder / "spec.json"
    if not spec_path.is_file():
        pytest.skip(f"parity fixtures not present at {pu.parity_dir()}")
    expected = pu.key_listing(json.loads(spec_path.read_text()), field)
    entries = [e for e in MODELS if e.arch == arch]
    assert entries, arch
    for e in entries:
        with torch.device("meta"):
            module = arch_registry.build(e.arch, e.config)
        pu.assert_listing(module, expected, e.id)


@pytest.mark.parametrize("entry", SHIPPED, ids=[e.id for e in SHIPPED])
def test_shipped_files_match_recorded_sha256(entry):
    from maskstudio.settings import SHIPPED_CHECKPOINTS

    paths = [SHIPPED_CHECKPOINTS / f.name for f in entry.files]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"{entry.id}: starter files not committed yet ({', '.join(p.name for p in paths)})")
    for f, p in zip(entry.files, paths):
        fix = "run `maskstudio models rehash-shipped` and commit checkpoints/registry.json"
        assert f.sha256 is not None, f"{p.name} exists but has no sha256 in the registry: {fix}"
        assert sha256_file(p) == f.sha256, f"{p.name} changed: {fix}"
        assert f.size_bytes == p.stat().st_size, p.name
    doc = json.loads(paths[1].read_text())
    if entry.is_boundary_set:  # DMN style boundaries: .npy + sidecar pairs
        assert doc["format"] == "maskstudio_dmn_boundary"
    else:
        assert doc["arch"] == entry.arch


def test_broken_registry_is_refused_with_path(tmp_path):
    raw = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    raw["models"][2]["role"] = "painter"
    bad = tmp_path / "registry.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=rf"{re.escape(str(bad))}: model '.*': unknown role 'painter'"):
        load_registry(bad)
    raw["models"][2]["role"] = "dmn"
    raw["models"][2]["files"][0]["sha256"] = "abc"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="sha256 must be 64 lowercase hex digits or null"):
        load_registry(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable model registry"):
        load_registry(bad)


def test_record_shipped_hashes(tmp_path):
    """The maintainer helper writes real digests of the shipped files (and only changes those)."""
    import shutil

    from maskstudio.io.registry import record_shipped_hashes

    reg = tmp_path / "registry.json"
    shutil.copyfile(REGISTRY_PATH, reg)
    shipped = tmp_path / "ckpt"
    shipped.mkdir()
    for e in SHIPPED:
        for f in e.files:
            (shipped / f.name).parent.mkdir(parents=True, exist_ok=True)   # dmn_boundaries/<name>
            (shipped / f.name).write_bytes(f"{e.id}/{f.name}".encode())
    changed = record_shipped_hashes(reg, shipped)
    assert sorted(changed) == sorted(f.name for e in SHIPPED for f in e.files)
    again = load_registry(reg)
    for e in SHIPPED:
        for f in again[e.id].files:
            assert f.sha256 == sha256_file(shipped / f.name) and f.size_bytes == (shipped / f.name).stat().st_size
    assert record_shipped_hashes(reg, shipped) == []
    assert {k: v.config for k, v in again.items()} == {k: v.config for k, v in REG.items()}
