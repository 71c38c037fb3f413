"""RenderSettings: validation, request translation (the one place), JSON round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from maskstudio.engine import AgileParams, DualParams, Exemplar, RenderRequest
from maskstudio.engine.render_settings import (
    COLOUR_SLOTS, DEFAULT_DUAL_WEIGHTS, N_DUAL_WEIGHTS, STRUCTURE_SLOTS, AgileSettings, DualSettings, RenderSettings,
)
from maskstudio.errors import ConfigError


def test_defaults_are_the_official_dual_slots():
    assert len(DEFAULT_DUAL_WEIGHTS) == N_DUAL_WEIGHTS == 18
    assert list(STRUCTURE_SLOTS) == list(range(7)) and list(COLOUR_SLOTS) == list(range(7, 18))
    assert all(DEFAULT_DUAL_WEIGHTS[k] == 0.75 for k in STRUCTURE_SLOTS)
    assert all(DEFAULT_DUAL_WEIGHTS[k] == 1.0 for k in COLOUR_SLOTS)
    assert RenderSettings().dual.weights == DEFAULT_DUAL_WEIGHTS
    assert DualSettings(weights=()).weights == DEFAULT_DUAL_WEIGHTS   # empty = official default
    d = DualSettings().with_master(COLOUR_SLOTS, 0.2)
    assert d.weights[:7] == (0.75,) * 7 and d.weights[7:] == (0.2,) * 11


def test_face_request_carries_no_stylegan_parameters():
    st = RenderSettings(edits={"smile": 1.0}, agile=AgileSettings("a"), morph=0.5)
    assert st.to_request() == {"output": "face", "want_latent": False}
    assert st.to_request(size_px=128, want_latent=True) == {"output": "face", "want_latent": True, "size_px": 128}


def test_photo_request_drops_zero_edits():
    st = RenderSettings(output="photo", edits={"smile": 1.5, "age": 0.0})
    assert st.to_request() == {"output": "photo", "want_latent": True, "edits": {"smile": 1.5}}
    assert st.edits == {"smile": 1.5, "age": 0.0}          # kept in the settings (slider positions)


def test_agile_and_dual_requests():
    agile = RenderSettings(output="agile", agile=AgileSettings("toon", 0.4, "B"), morph=0.7)
    kw = agile.to_request()
    assert kw["agile"] == AgileParams("toon", 0.4, "B") and kw["morph"] == 0.7 and "dual" not in kw
    dual = RenderSettings(output="dual", dual=DualSettings("cartoon", None, (0.5,) * 18))
    # no code chosen: an exemplar named like one of the model's codes selects it
    assert dual.to_request(exemplar_name="c3", dual_codes=["c1", "c3"])["dual"] == DualParams("cartoon", "c3", (0.5,) * 18)
    assert dual.to_request(exemplar_name="alice", dual_codes=["c1"])["dual"].code is None
    chosen = dual.replace(dual=DualSettings("cartoon", "c1"))
    assert chosen.to_request(exemplar_name="c3", dual_codes=["c1", "c3"])["dual"].code == "c1"
    # the kwargs build a real request
    labels = np.zeros((32, 32), np.uint8)
    ex = Exemplar(np.zeros((32, 32, 3), np.uint8), labels)
    req = RenderRequest(labels, ex, **dual.to_request(size_px=64))
    assert req.output == "dual" and req.size_px == 64 and req.want_latent


def test_json_round_trip_and_immutability():
    st = RenderSettings(output="dual", edits={"a": -2.0, "b": 0.0}, agile=AgileSettings("x", 0.3, "A"),
                        dual=DualSettings("d", "code7", tuple(np.linspace(0, 1, 18))), morph=0.25, face_morph=0.6)
    text = json.dumps(st.to_json())
    assert RenderSettings.from_json(json.loads(text)) == st
    with pytest.raises(TypeError):
        st.edits["a"] = 1.0                     # type: ignore[index]
    with pytest.raises(AttributeError):
        st.output = "face"                      # type: ignore[misc]
    assert st.replace(output="photo").output == "photo" and st.output == "dual"


def test_from_json_takes_defaults_and_ignores_unknown_keys():
    assert RenderSettings.from_json({}) == RenderSettings()
    assert RenderSettings.from_json({"output": "photo", "future_field": 3}) == RenderSettings(output="photo")


@pytest.mark.parametrize("make, message", [
    (lambda: RenderSettings(output="dmn"), "unknown output 'dmn'"),
    (lambda: RenderSettings(morph=1.5), r"morph must be in \[0, 1\]"),
    (lambda: RenderSettings(face_morph=-0.1), r"face morph must be in \[0, 1\]"),
    (lambda: RenderSettings(edits={"smile": "lots"}), "edit 'smile' must be a number"),
    (lambda: RenderSettings(edits={"smile": float("nan")}), "must be finite"),
    (lambda: AgileSettings(strength=2), r"agile strength must be in \[0, 1\]"),
    (lambda: AgileSettings(branch="C"), "branch must be auto, A or B"),
    (lambda: DualSettings(weights="0.5"), "list of numbers"),
    (lambda: DualSettings(weights=(1, None)), "dual weight 1 must be a number"),
    (lambda: RenderSettings.from_json([1, 2]), "must be an object"),
    (lambda: RenderSettings.from_json({"version": 2}), "newer"),
])
def test_bad_values_are_config_errors_naming_the_value(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
