from dataclasses import dataclass, field

import pytest

from nar.core.config import load_config, parse_overrides, to_dict
from nar.core.errors import NarError


@dataclass
class Inner:
    dim: int = 8
    mult: tuple[int, ...] = (1, 2)


@dataclass
class Outer:
    name: str = "x"
    lr: float = 1e-3
    inner: Inner = field(default_factory=Inner)


def test_defaults_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('name = "y"\n[inner]\ndim = 16\nmult = [1, 2, 4]\n')
    cfg = load_config(Outer, path, parse_overrides(["inner.dim=32", "lr=3e-4"]))
    assert cfg.name == "y" and cfg.lr == 3e-4
    assert cfg.inner.dim == 32 and cfg.inner.mult == (1, 2, 4)
    assert to_dict(cfg)["inner"]["mult"] == [1, 2, 4]


def test_unknown_key_and_bad_override(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("nope = 1\n")
    with pytest.raises(NarError, match="unknown config key"):
        load_config(Outer, path)
    with pytest.raises(NarError, match="key=value"):
        parse_overrides(["inner.dim"])
    with pytest.raises(NarError, match="not found"):
        load_config(Outer, tmp_path / "missing.toml")


def test_override_values_are_typed():
    assert parse_overrides(["a=3", "b=true", "c=[2,2]", "d=hello"]) == {"a": 3, "b": True, "c": [2, 2], "d": "hello"}
