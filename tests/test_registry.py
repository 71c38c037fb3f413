"""Architecture registry: lazy imports, builds, clear errors."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from maskstudio.errors import ConfigError
from maskstudio.models import registry
from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork

TEAM_NAMES = {"maskgan_dmn", "stylegan2", "dualstylegan", "agilegan_generator", "psp_encoder",
              "agilegan_encoder", "face_parser", "vgg16_features"}


def test_names_and_reference_form():
    assert set(registry.ARCHITECTURES) == TEAM_NAMES
    for arch, (cfg_ref, mod_ref) in registry.ARCHITECTURES.items():
        cmod, _, ccls = cfg_ref.partition(":")
        mmod, _, mcls = mod_ref.partition(":")
        assert cmod == mmod and cmod.startswith("maskstudio.models.") and ccls and mcls, arch


@pytest.mark.parametrize("arch", sorted(TEAM_NAMES))
def test_each_entry_resolves_or_says_module_missing(arch):
    module_name = registry.ARCHITECTURES[arch][0].partition(":")[0]
    if importlib.util.find_spec(module_name) is None:
        with pytest.raises(ConfigError, match="does not exist"):
            registry.resolve(arch)
    else:
        cfg_cls, mod_cls = registry.resolve(arch)
        assert issubclass(mod_cls, torch.nn.Module)
        cfg = cfg_cls()
        # default configs survive the dict round trip the checkpoint JSON relies on
        assert registry.make_config(arch, registry.config_to_dict(cfg)) == cfg


def test_build_dmn_from_dict_object_and_defaults():
    net = registry.build("maskgan_dmn", {"ngf": 8, "n_blocks": 2})
    assert isinstance(net, DenseMappingNetwork) and net.cfg == DenseMappingConfig(ngf=8, n_blocks=2)
    cfg = DenseMappingConfig(ngf=4, n_downsample=2, n_blocks=1)
    assert registry.build("maskgan_dmn", cfg).cfg is cfg
    with torch.device("meta"):
        assert registry.build("maskgan_dmn").cfg == DenseMappingConfig()
    assert registry.arch_of(net) == "maskgan_dmn"
    assert registry.arch_of(torch.nn.Linear(2, 2)) is None
    assert registry.config_to_dict(cfg) == {"ngf": 4, "n_downsample": 2, "n_blocks": 1,
                                            "label_nc": 19, "output_nc": 3}


def test_errors_are_config_errors():
    with pytest.raises(ConfigError, match="unknown architecture 'nope'.*maskgan_dmn"):
        registry.build("nope", {})
    with pytest.raises(ConfigError, match="unknown"):
        registry.build("maskgan_dmn", {"ngf": 8, "colour": 1})
    with pytest.raises(ConfigError, match="positive integer"):
        registry.build("maskgan_dmn", {"ngf": -1})
    with pytest.raises(ConfigError, match="dict"):
        registry.build("maskgan_dmn", [("ngf", 8)])


def test_missing_module_is_a_clear_config_error(monkeypatch):
    monkeypatch.setitem(registry.ARCHITECTURES, "later_net",
                        ("maskstudio.models.not_written_yet:LaterConfig", "maskstudio.models.not_written_yet:Later"))
    with pytest.raises(ConfigError, match="'later_net' is not available: module maskstudio.models.not_written_yet"):
        registry.build("later_net", {})
    monkeypatch.setitem(registry.ARCHITECTURES, "wrong_attr",
                        ("maskstudio.models.dense_mapping:NoSuchConfig", "maskstudio.models.dense_mapping:X"))
    with pytest.raises(ConfigError, match="has no NoSuchConfig"):
        registry.build("wrong_attr", {})
