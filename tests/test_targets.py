"""Target files load into frozen objects; unknown/missing keys name the file and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from snn2hw import targets
from snn2hw.errors import TargetError


def test_shipped_targets_load() -> None:
    assert {"loihi1", "loihi2", "tiny"} <= set(targets.available())
    l1, l2 = targets.load("loihi1"), targets.load("loihi2")
    assert l1.core.neurons_max == 1024 and l2.core.neurons_max == 8192
    assert l1.core.synapse_memory_bits == 128 * 1024 * 8
    assert l1.numeric.state_bits == 24 and l1.numeric.decay_bits == 12
    assert l1.numeric.vth_mant_bits == 17 and l1.numeric.delay_max == 62
    assert l1.chip.mesh == (8, 16)
    assert len(l1.sha256) == 64 and l1.sha256 != l2.sha256


def test_targets_are_frozen() -> None:
    t = targets.load("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.core.neurons_max = 5  # type: ignore[misc]


def test_every_figure_cites_a_source() -> None:
    root = Path(targets.__file__).parents[1] / "targets"
    for name in ("loihi1", "loihi2"):
        text = (root / f"{name}.toml").read_text()
        for line in text.splitlines():
            if "=" in line and not line.lstrip().startswith("#") and "[" not in line.split("=")[0]:
                key = line.split("=")[0].strip()
                if key in ("name", "description", "family") or line.split("=")[1].strip() in (
                        "true", "false"):
                    continue
                assert "#" in line or key in _GROUPED, f"{name}.toml: '{key}' has no source"


_GROUPED = {"weight_exp_max"}


def _text(**edits: str) -> str:
    text = targets.load("tiny").toml
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    return text


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_text(**{"delay_max = 15": "delay_max = 15\nturbo = 1"}))
    with pytest.raises(TargetError, match=r"bad.toml.*numeric\.turbo"):
        targets.load(path)


def test_missing_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_text(**{"neurons_max = 16": ""}))
    with pytest.raises(TargetError, match=r"bad.toml.*core\.neurons_max"):
        targets.load(path)


@pytest.mark.parametrize("edit, key", [
    ({"neurons_max = 16": "neurons_max = 1.5"}, "core.neurons_max"),
    ({"conv = false": "conv = 0"}, "connectivity.conv"),
    ({"mesh = [2, 2]": "mesh = [1, 1]"}, "chip.mesh"),
    ({'family = "loihi-lif"': 'family = "truenorth"'}, "target.family"),
    ({"[cost]": "[costs]"}, "costs"),
])
def test_bad_values_are_named(tmp_path: Path, edit: dict[str, str], key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_text(**edit))
    with pytest.raises(TargetError, match=key.replace(".", r"\.")):
        targets.load(path)


def test_not_toml_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[[")
    with pytest.raises(TargetError, match="not valid TOML"):
        targets.load(path)
    with pytest.raises(TargetError, match="unknown target 'loihi9'.*loihi2"):
        targets.load("loihi9")


def test_fixed_formats() -> None:
    f = targets.load("loihi2").formats
    assert f["v"].max_int == 2**23 - 1 and f["v"].min_int == -(2**23 - 1)
    assert f["decay"].max_int == 4095 and f["vth_mant"].max_int == 2**17 - 1
    assert f["bias_mant"].contains([-4095, 4095]) and not f["bias_mant"].contains([4096])
