"""Conversion of official model files into MaskStudio's checkpoint format. Qt-free.

Official pickles are read with :func:`maskstudio.models.checkpoints.load_official`
(``weights_only`` + allow-list; a pickle that would run code is refused), the network is built
from the registry entry's config on the meta device, ``checkpoints.check_state_dict`` checks
every key and shape (a wrong file is named, with the architecture it looks like), and
``checkpoints.save_checkpoint`` writes our safetensors + JSON. Extras kept: ``latent_avg``;
DualStyleGAN style codes as ``exstyle_code.<style image name>`` [1, n_latent, 512] (names also
in ``meta["exstyle_names"]``); pSp ``opts`` (plain values) in ``meta["opts"]``. Boundary sets
are copied as they are, after :func:`maskstudio.models.latent_ops.load_direction` accepted
each file.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

from maskstudio.errors import CheckpointError, ConfigError, LatentFileError, file_error
from maskstudio.io.registry import RegistryEntry
from maskstudio.roles import DIRECTION_SUFFIXES

__all__ = ["convert_model", "convert_boundaries"]


def convert_boundaries(e: RegistryEntry, files: Mapping[str, Path], staging: Path) -> list[str]:
    """Check every direction file of boundary set ``e`` (shape, dtype, finiteness) and copy it into
    ``staging``. Returns the names written."""
    from maskstudio.models.latent_ops import load_direction

    dim = int((e.config or {}).get("dim", 512))
    written = []
    for name, p in files.items():
        if Path(name).suffix.lower() not in DIRECTION_SUFFIXES:
            raise file_error(LatentFileError, p, f"not a direction file (expected {', '.join(DIRECTION_SUFFIXES)})")
        load_direction(p, dim=dim)  # shape / dtype / finiteness; .pt through weights_only
        shutil.copyfile(p, staging / name)
        written.append(name)
    return written


def convert_model(e: RegistryEntry, files: Mapping[str, Path], staging: Path,
                  known: Mapping[str, RegistryEntry] | None = None) -> list[str]:
    """Convert the official files of ``e`` into ``staging/<id>.safetensors`` + ``<id>.json``.

    ``known``: the registry's entries, to name the model a wrong file looks like. Returns the
    names written; a wrong or unsafe file raises :class:`CheckpointError` naming it."""
    import torch

    from maskstudio.models import checkpoints, registry

    weights_rf = next(f for f in e.files if f.kind == "weights")
    wpath = files[weights_rf.name]
    assert e.arch is not None
    config = dict(e.config or {})
    extras: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"title": e.title, "registry_id": e.id, "role": e.role,
                            "licence": e.licence_name, "source_page": e.page}
    if wpath.suffix == ".safetensors":
        loaded = checkpoints.load_checkpoint(wpath)
        if loaded.arch != e.arch:
            raise file_error(CheckpointError, wpath, f"is a {loaded.arch} checkpoint, {e.id} needs {e.arch}")
        sd = loaded.module.state_dict()
        config = dict(loaded.config)
        extras.update({k: v for k, v in loaded.extras.items() if isinstance(v, torch.Tensor)})
        layout = "maskstudio_safetensors"
    else:
        sd = checkpoints.load_official(wpath)
        layout = sd.layout
        opts = sd.extras.get("opts")
        if isinstance(opts, Mapping) and "start_from_latent_avg" in opts and e.arch == "psp_encoder":
            config["start_from_latent_avg"] = bool(opts["start_from_latent_avg"])
        for k, v in sd.extras.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                extras[k] = v.detach().to(torch.float32)
        if isinstance(opts, Mapping):
            meta["opts"] = {str(k): v for k, v in opts.items() if isinstance(v, (str, int, float, bool, type(None)))}
    try:
        cfg = registry.make_config(e.arch, config)
        with torch.device("meta"):
            module = registry.build(e.arch, cfg)
    except ConfigError as err:
        raise file_error(CheckpointError, wpath, f"cannot build {e.arch} for {e.id}: {err}") from err
    try:
        checkpoints.check_state_dict(module, sd, wpath)
    except CheckpointError as err:
        hint = ""
        try:
            other, _ = checkpoints.detect_arch(sd, wpath)
            if other != e.arch:
                alts = [x.id for x in (known or {}).values() if x.arch == other and not x.shipped]
                hint = (f" — this looks like a {other} checkpoint, not {e.arch}"
                        + (f" (did you mean {' / '.join(alts[:3])}?)" if alts else ""))
        except CheckpointError:
            pass
        raise file_error(CheckpointError, wpath,
                         f"wrong file for {e.id}: {str(err).split(': ', 1)[-1]}{hint}") from err
    module.load_state_dict({k: v for k, v in sd.items()}, strict=True, assign=True)
    for rf in e.files:
        if rf.kind == "style_codes" and rf.name in files:
            codes = checkpoints.load_exstyle_codes(files[rf.name])
            names = sorted(codes)
            n_lat = getattr(module, "n_latent", None)
            for n in names:
                if n_lat is not None and codes[n].shape[1] != int(n_lat):
                    raise file_error(CheckpointError, files[rf.name],
                                     f"style code {n!r} has {codes[n].shape[1]} rows, the generator "
                                     f"of {e.id} needs {int(n_lat)} (codes from another model?)")
            for n in names:  # one extra per style image: "exstyle_code.<name>" [1, n_latent, 512]
                extras[f"exstyle_code.{n}"] = codes[n].to(torch.float32).contiguous()
            meta["exstyle_names"] = names
            meta["exstyle_file"] = rf.name
    meta["source_layout"] = layout
    checkpoints.save_checkpoint(staging / e.id, module, e.arch, cfg, extra_tensors=extras, meta=meta)
    return [f"{e.id}.safetensors", f"{e.id}.json"]
