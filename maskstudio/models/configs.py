"""Shared helper for the networks' config dataclasses (JSON dict -> config, strictly)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from maskstudio.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T", bound="DataclassInstance")


def strict_from_dict(cls: type[_T], d: Mapping[str, Any]) -> _T:
    """``cls(**d)``, refusing keys that are not fields of the dataclass ``cls`` (ConfigError)."""
    unknown = sorted(set(d) - {f.name for f in fields(cls)})
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}")
    return cls(**dict(d))
