from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from shared.config import ConfigError, load_config, save_config


@dataclass
class Gnn:
    epochs: int = 10
    hidden: int = 32
    lr: float = 0.01


@dataclass
class Train:
    seed: int = 0
    name: str = "run"
    gnn: Gnn = field(default_factory=Gnn)
    windows: list[str] = field(default_factory=lambda: ["1h", "24h"])
    mode: Literal["fpr", "cost"] = "fpr"
    out: Path | None = None
    adversarial: bool = False


def test_yaml_and_overrides_fill_nested_dataclass(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("seed: 3\ngnn:\n  epochs: 5\n  lr: 1\nwindows: [1h]\n")
    cfg = load_config(Train, p, ["gnn.hidden=64", "mode=cost", "out=/tmp/x", "adversarial=true"])
    assert cfg.seed == 3 and cfg.gnn.epochs == 5 and cfg.gnn.hidden == 64
    assert cfg.gnn.lr == 1.0 and isinstance(cfg.gnn.lr, float)
    assert cfg.windows == ["1h"] and cfg.mode == "cost" and cfg.out == Path("/tmp/x") and cfg.adversarial


def test_defaults_without_file():
    assert load_config(Train) == Train()


def test_unknown_key_names_it_and_lists_valid_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("gnn:\n  epoch: 5\n")
    with pytest.raises(ConfigError) as e:
        load_config(Train, p)
    msg = str(e.value)
    assert "gnn.epoch" in msg and "did you mean 'gnn.epochs'" in msg and "epochs, hidden, lr" in msg


def test_unknown_override_key():
    with pytest.raises(ConfigError, match="unknown key 'sed'.*did you mean 'seed'"):
        load_config(Train, None, ["sed=1"])


@pytest.mark.parametrize("override,needle", [
    ("seed=abc", "seed must be an integer, got 'abc'"),
    ("gnn.lr=fast", "gnn.lr must be a number"),
    ("adversarial=maybe", "adversarial must be true or false"),
    ("mode=other", "mode must be one of ['fpr', 'cost']"),
    ("windows=5", "windows must be a list"),
])
def test_wrong_type_is_named(override, needle):
    with pytest.raises(ConfigError) as e:
        load_config(Train, None, [override])
    assert needle in str(e.value)


def test_bad_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("seed: 1\ngnn: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML at line \d+"):
        load_config(Train, p)


def test_yaml_must_be_mapping_and_exist(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Train, p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Train, tmp_path / "missing.yaml")


def test_override_without_equals():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Train, None, ["seed"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(Train, None, ["gnn.epochs=7", "out=/tmp/y"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(Train, tmp_path / "config.yaml") == cfg
