"""Shared helpers for the parity tests (numbers computed by the official networks).

The fixtures live in ``$MASKSTUDIO_PARITY_DIR`` (default ``<repo>/../shared/parity``); see the
README there. Rules these helpers enforce (issue 3):

* fixture folder absent            -> the test is **skipped** with a clear reason;
* folder present but unusable      -> the test **fails** (``pytest.fail``), never skips;
* fixtures are read with ``torch.load(..., weights_only=True)`` only.

API (in a test file under tests/: ``import parity_utils as pu`` — pytest puts tests/ on sys.path)::

    parity_dir() -> Path                      # where fixtures are looked for
    load_fixture(name) -> (fx, spec)          # fixture.pt dict + spec.json dict (cached; do not mutate)
    case_params(name) -> list[pytest.param]   # for @pytest.mark.parametrize("case_name", ...);
                                              # one skipped param when the folder is absent
    get_case(name, case_name) -> dict         # one case dict from fx["cases"]
    fixture_state_dict(fx, name=None) -> dict[str, Tensor]   # name = fixture folder (for
                                              # its fixture_weights.py; else the parity root's)
        # stored fixtures: fx["state_dict"]; full-size ones: rebuilt with the folder's
        # fixture_weights.py from fx["key_shapes"] + fx["config"]["weight_overrides"]
    atol_for(spec, output) -> float           # spec["suggested_atol"], '*' patterns allowed
    key_listing(spec, field="full_size_keys") -> dict[str, tuple[int, ...]]
    assert_listing(module_or_state_dict, expected_listing, what)   # names (in order) + shapes
    assert_close(fixture, case, output, ours, ref, atol) -> float  # max|ours-ref|, recorded
    compare_outputs(fixture, case, ours: dict, case_dict, spec) -> dict[str, float]
        # every output stored in the case; all are measured and recorded before failing
    compare_case(name, case_name, run) -> dict[str, float]   # compare_outputs(name, case,
                                              # run(case), spec) for the named case
    on_meta(build) -> Module                  # build() under torch.device("meta") (no init)
    fixture_module(name, build) -> Module     # build(fx["config"]), fixture weights loaded
                                              # strictly, eval mode
    official_module(name, build)              # generator for a module-scoped pytest fixture:
                                              # meta-built, fixture weights loaded strictly,
                                              # yields (module, fx, spec), frees it afterwards
    module_copy(module) -> Module             # type(module)(module.cfg) with the same state, eval
    case_with_inputs(case, fn) -> dict        # the case with fn applied to every input tensor

Every comparison is recorded in ``RESULTS`` (in-process) and, when ``$MASKSTUDIO_PARITY_REPORT``
is set, appended as one JSON line ``{"fixture", "case", "output", "max_abs", "atol", "ok"}`` to
that file, so a coordinator can quote worst ``max|ours - official|`` per fixture
(``summarize_report(path)`` folds such a file to the worst value per fixture/output).
"""
from __future__ import annotations

import fnmatch
import functools
import gc
import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
REPORT_ENV = "MASKSTUDIO_PARITY_REPORT"
DIR_ENV = "MASKSTUDIO_PARITY_DIR"

RESULTS: list[dict[str, Any]] = []


def parity_dir() -> Path:
    """``$MASKSTUDIO_PARITY_DIR`` or ``<repo>/../shared/parity``."""
    env = os.environ.get(DIR_ENV)
    return Path(env) if env else ROOT.parent / "shared" / "parity"


def _folder(name: str) -> Path:
    folder = parity_dir() / name
    if not folder.is_dir():
        pytest.skip(f"parity fixture folder {folder} is absent (set {DIR_ENV} to run parity tests)")
    return folder


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> tuple[dict, dict]:
    path = Path(folder)
    fx = torch.load(path / "fixture.pt", map_location="cpu", weights_only=True)
    with open(path / "spec.json", encoding="utf-8") as f:
        spec = json.load(f)
    return fx, spec


def load_fixture(name: str) -> tuple[dict, dict]:
    """Return ``(fx, spec)`` for fixture folder ``name``; skip if absent, fail if broken."""
    folder = _folder(name)
    try:
        fx, spec = _load(str(folder))
    except Exception as e:  # present but unreadable: that is a failure, not a skip
        pytest.fail(f"parity fixture {folder} is present but cannot be loaded: {type(e).__name__}: {e}")
    if not isinstance(fx, dict) or "cases" not in fx or "config" not in fx:
        pytest.fail(f"parity fixture {folder}/fixture.pt lacks 'cases'/'config'")
    return fx, spec


def case_params(name: str) -> list:
    """Parametrize values (case names) for fixture ``name``.

    Folder absent -> one param marked skip (with the reason). Present but unreadable -> one
    param that fails inside the test (``get_case`` re-raises through ``load_fixture``).
    """
    folder = parity_dir() / name
    if not folder.is_dir():
        return [pytest.param("<absent>", marks=pytest.mark.skip(
            reason=f"parity fixture folder {folder} is absent (set {DIR_ENV})"))]
    try:
        fx, _ = _load(str(folder))
        names = [c["name"] for c in fx["cases"]]
    except Exception:
        return [pytest.param("<unreadable>", id="unreadable")]
    if not names:
        return [pytest.param("<no cases>", id="no-cases")]
    return [pytest.param(n, id=n) for n in names]


def get_case(name: str, case_name: str) -> dict:
    fx, _ = load_fixture(name)
    for case in fx["cases"]:
        if case.get("name") == case_name:
            return case
    pytest.fail(f"parity fixture {name}: no case named {case_name!r}")


def _fixture_weights_module(folder: Path):
    path = folder / "fixture_weights.py"
    if not path.is_file():
        path = parity_dir() / "fixture_weights.py"
    if not path.is_file():
        pytest.fail(f"{path}: fixture_weights.py is missing but the fixture needs it")
    spec = importlib.util.spec_from_file_location("_maskstudio_fixture_weights", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def fixture_state_dict(fx: Mapping[str, Any], name: str | None = None) -> dict[str, torch.Tensor]:
    """The official weights of a fixture: stored, or rebuilt with ``fixture_weights.py``."""
    if "state_dict" in fx:
        return dict(fx["state_dict"])
    if "key_shapes" in fx:
        mod = _fixture_weights_module(parity_dir() / name if name else parity_dir())
        shapes = {k: tuple(int(s) for s in v) for k, v in fx["key_shapes"].items()}
        w = mod.fixture_weights(shapes, seed=0, overrides=fx["config"].get("weight_overrides"))
        return {k: torch.from_numpy(v) for k, v in w.items()}
    pytest.fail("parity fixture has neither 'state_dict' nor 'key_shapes'")


def atol_for(spec: Mapping[str, Any], output: str) -> float:
    table = spec.get("suggested_atol", {})
    if output in table:
        return float(table[output])
    for pattern, value in table.items():
        if fnmatch.fnmatchcase(output, pattern):
            return float(value)
    pytest.fail(f"spec.json of {spec.get('fixture')} has no suggested_atol for output {output!r}")


def key_listing(spec: Mapping[str, Any], field: str = "full_size_keys") -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` (insertion order kept) from a spec listing such as ``full_size_keys``."""
    if field not in spec:
        pytest.fail(f"spec.json of {spec.get('fixture')} has no {field!r}")
    return {k: tuple(int(s) for s in v["shape"]) for k, v in spec[field].items()}


def assert_listing(module_or_sd, expected: Mapping[str, tuple[int, ...]], what: str = "") -> None:
    """Our ``state_dict()`` names and shapes equal ``expected`` exactly (order included)."""
    sd = module_or_sd.state_dict() if isinstance(module_or_sd, torch.nn.Module) else module_or_sd
    ours = {k: tuple(v.shape) for k, v in sd.items()}
    missing = [k for k in expected if k not in ours]
    extra = [k for k in ours if k not in expected]
    shapes = [f"{k}: ours {ours[k]} vs official {expected[k]}"
              for k in expected if k in ours and ours[k] != tuple(expected[k])]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (first {missing[:5]})")
    if extra:
        problems.append(f"{len(extra)} unexpected (first {extra[:5]})")
    if shapes:
        problems.append(f"{len(shapes)} mis-shaped (first {shapes[:3]})")
    if not problems and list(ours) != list(expected):
        first = next(i for i, (a, b) in enumerate(zip(ours, expected)) if a != b)
        problems.append(f"same keys, different order from index {first}: {list(ours)[first]} "
                        f"vs {list(expected)[first]}")
    assert not problems, f"{what} state_dict listing differs: " + "; ".join(problems)


def _record(fixture: str, case: str, output: str, max_abs: float, atol: float) -> dict:
    row = {"fixture": fixture, "case": case, "output": output, "max_abs": max_abs,
           "atol": atol, "ok": bool(max_abs <= atol)}
    RESULTS.append(row)
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return row


def max_abs_diff(ours: torch.Tensor, ref: torch.Tensor) -> float:
    ours = ours.detach().to("cpu", torch.float64)
    ref = ref.detach().to("cpu", torch.float64)
    if ours.shape != ref.shape:
        return math.inf
    if ours.numel() == 0:
        return 0.0
    d = (ours - ref).abs().max().item()
    return math.inf if math.isnan(d) else d


def assert_close(fixture: str, case: str, output: str, ours: torch.Tensor, ref: torch.Tensor,
                 atol: float) -> float:
    """Record ``max|ours - ref|`` and assert it is within ``atol`` (shapes must match)."""
    d = max_abs_diff(ours, ref)
    _record(fixture, case, output, d, atol)
    assert tuple(ours.shape) == tuple(ref.shape), \
        f"{fixture}/{case}/{output}: shape {tuple(ours.shape)} vs official {tuple(ref.shape)}"
    assert d <= atol, f"{fixture}/{case}/{output}: max|ours - official| = {d:.3g} > atol {atol:.3g}"
    return d


def compare_outputs(fixture: str, case: Mapping[str, Any], ours: Mapping[str, torch.Tensor],
                    spec: Mapping[str, Any], outputs: list[str] | None = None) -> dict[str, float]:
    """Compare every stored output of ``case`` (or just ``outputs``) with ``ours[name]``.

    All outputs are measured and recorded first; then one assertion lists every failure.
    """
    names = outputs if outputs is not None else list(case["outputs"])
    diffs: dict[str, float] = {}
    failures = []
    for out in names:
        if out not in ours:
            failures.append(f"{out}: not produced")
            continue
        ref = case["outputs"][out]
        atol = atol_for(spec, out)
        d = max_abs_diff(ours[out], ref)
        _record(fixture, case["name"], out, d, atol)
        diffs[out] = d
        if tuple(ours[out].shape) != tuple(ref.shape):
            failures.append(f"{out}: shape {tuple(ours[out].shape)} vs official {tuple(ref.shape)}")
        elif not d <= atol:
            failures.append(f"{out}: max|ours - official| = {d:.3g} > atol {atol:.3g}")
    assert not failures, f"{fixture}/{case['name']}: " + "; ".join(failures)
    return diffs


def compare_case(name: str, case_name: str,
                 run: Callable[[dict], Mapping[str, torch.Tensor]]) -> dict[str, float]:
    """``compare_outputs`` of fixture ``name``'s case ``case_name`` with ``run(case)``."""
    _, spec = load_fixture(name)
    case = get_case(name, case_name)
    return compare_outputs(name, case, run(case), spec)


def on_meta(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``build()`` under ``torch.device("meta")``: shapes only, no (slow) random init."""
    with torch.device("meta"):
        return build()


def fixture_module(name: str, build: Callable[[dict], torch.nn.Module]) -> torch.nn.Module:
    """``build(fx["config"])`` with fixture ``name``'s official weights (strict), in eval mode."""
    fx, _ = load_fixture(name)
    m = build(fx["config"]).eval()
    m.load_state_dict(fixture_state_dict(fx, name), strict=True)
    return m


def official_module(name: str, build: Callable[[], torch.nn.Module]
                    ) -> Iterator[tuple[torch.nn.Module, dict, dict]]:
    """Body of a module-scoped fixture for a large network: ``build()`` on the meta device,
    materialised without init, fixture ``name``'s weights loaded strictly, eval mode; yields
    ``(module, fx, spec)`` and frees the module afterwards (``yield from`` it)."""
    fx, spec = load_fixture(name)
    model = on_meta(build).to_empty(device="cpu")  # skip the random init of the parameters
    sd = fixture_state_dict(fx, name)
    model.load_state_dict(sd, strict=True)
    del sd
    gc.collect()
    model.eval()
    yield model, fx, spec
    del model
    gc.collect()


def module_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A fresh ``type(module)(module.cfg)`` in eval mode with ``module``'s state dict."""
    m = type(module)(module.cfg).eval()
    m.load_state_dict(module.state_dict())
    return m


def case_with_inputs(case: Mapping[str, Any], fn: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    """A shallow copy of ``case`` whose ``inputs`` are ``fn(tensor)`` (e.g. ``.cuda()``, ``.double()``)."""
    return dict(case, inputs={k: fn(v) for k, v in case["inputs"].items()})


def summarize_report(path: str | os.PathLike) -> dict[str, dict[str, dict[str, float]]]:
    """Fold a JSON-lines report to ``{fixture: {output: {"worst": x, "atol": a}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            slot = out.setdefault(r["fixture"], {}).setdefault(r["output"], {"worst": 0.0, "atol": r["atol"]})
            slot["worst"] = max(slot["worst"], r["max_abs"])
    return out


if __name__ == "__main__":  # python tests/parity_utils.py report.jsonl
    import sys

    for fixture, outs in summarize_report(sys.argv[1]).items():
        for output, v in outs.items():
            print(f"{fixture:22s} {output:22s} worst {v['worst']:.3g}  atol {v['atol']:.3g}")
