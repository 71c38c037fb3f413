"""Model roles: the one table of what each kind of model is for. Imports nothing.

A *registry role* (``checkpoints/registry.json`` ``models[].role``) names what a published model
is; the *engine role* (:class:`maskstudio.engine.models.ModelSet`) names the render stage that
uses it; the *architecture* is what our checkpoint JSON stores in ``"arch"``
(:data:`maskstudio.models.registry.ARCHITECTURES`). Boundary sets are folders of direction files
(:data:`DIRECTION_SUFFIXES`), with no architecture and no engine role of their own.
"""
from __future__ import annotations

__all__ = ["ROLE_TABLE", "ROLES", "ENGINE_ROLE", "ROLE_ARCH", "ENGINE_ROLES", "ROLE_ARCHS", "DIRECTION_SUFFIXES"]

#: registry role -> (engine role, architecture); ``None`` for boundary sets.
ROLE_TABLE: dict[str, tuple[str | None, str | None]] = {
    "dmn": ("dmn", "maskgan_dmn"),
    "parser": ("parser", "face_parser"),
    "stylegan2": ("stylegan", "stylegan2"),
    "dualstylegan-style": ("dual", "dualstylegan"),
    "psp-encoder": ("encoder", "psp_encoder"),
    "agilegan-encoder": ("encoder", "agilegan_encoder"),
    "agilegan-style": ("agile", "agilegan_generator"),
    "boundary-set": (None, None),
}
#: Registry roles, in registry order.
ROLES: tuple[str, ...] = tuple(ROLE_TABLE)
#: Registry role -> engine role.
ENGINE_ROLE: dict[str, str | None] = {r: e for r, (e, _) in ROLE_TABLE.items()}
#: Registry role -> the architecture it must have.
ROLE_ARCH: dict[str, str | None] = {r: a for r, (_, a) in ROLE_TABLE.items()}
#: Engine roles, in the order the engine loads them.
ENGINE_ROLES: tuple[str, ...] = ("dmn", "parser", "encoder", "stylegan", "agile", "dual")
#: Engine role -> the architectures that can play it.
ROLE_ARCHS: dict[str, tuple[str, ...]] = {
    er: tuple(a for e, a in ROLE_TABLE.values() if e == er and a is not None) for er in ENGINE_ROLES
}
#: File suffixes of semantic direction / boundary files (InterFaceGAN ``.npy``, e4e ``.pt``).
DIRECTION_SUFFIXES: tuple[str, ...] = (".npy", ".pt", ".pth")
