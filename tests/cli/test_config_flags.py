"""One config surface: the CLI's flags are the config models' fields, named as in the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.offline import build_train_config, recover, synthesize, train
from cli.options import flag_name, given_fields
from model.config import RECOVERY_DEFAULTS, SynthesisConfig, TrainConfig


def flags(command: click.Command) -> set[str]:
    """Every flag a command takes, shown or hidden."""
    return {opt for param in command.params for opt in getattr(param, "opts", [])}


@pytest.mark.parametrize("command", [train, recover], ids=["train", "recover"])
def test_every_train_config_field_has_a_flag_of_its_name(command: click.Command) -> None:
    missing = [n for n in TrainConfig.model_fields if flag_name(n) not in flags(command)]
    assert missing == []


def test_every_synthesis_config_field_has_a_flag_of_its_name() -> None:
    missing = [n for n in SynthesisConfig.model_fields if flag_name(n) not in flags(synthesize)]
    assert missing == []


def test_help_lists_the_field_names_with_descriptions_and_defaults() -> None:
    shown = CliRunner().invoke(cli, ["train", "--help"], terminal_width=200).output
    assert "--learning-rate FLOAT" in shown and "Adam learning rate  [default: 0.002]" in shown
    assert "--langevin-delta FLOAT" in shown and "Langevin step size  [default: 0.03]" in shown
    assert "--mlp-widths LIST" in shown and "[default: 20,20]" in shown
    assert "--lr " not in shown and "--delta " not in shown, "old names are hidden aliases"
    for name, field in TrainConfig.model_fields.items():
        assert field.description and field.description.split()[0] in shown, name


def parsed(command: click.Command, args: list[str]) -> dict[str, Any]:
    """The parameters a command line gives the command, without running it."""
    return dict(command.make_context(command.name or "", args).params)


def test_old_flag_names_still_set_their_fields(tmp_path: Path) -> None:
    base = ["clip.mp4", "--out", str(tmp_path)]
    old = build_train_config(parsed(train, [*base, "--lr", "0.01", "--delta", "0.05"]))
    new = build_train_config(
        parsed(train, [*base, "--learning-rate", "0.01", "--langevin-delta", "0.05"])
    )
    assert old == new and old.learning_rate == 0.01 and old.langevin_delta == 0.05
    assert old.model_fields_set == {"learning_rate", "langevin_delta"}, "the rest stays unset"


def test_flags_read_each_kind_of_field(tmp_path: Path) -> None:
    args = ["clip.mp4", "--out", str(tmp_path), "--image-size", "32", "--mlp-widths", "8,4"]
    config = build_train_config(parsed(train, [*args, "--method", "lds", "--beta1", "0.9"]))
    assert (config.image_size, config.mlp_widths, config.method) == (32, (8, 4), "lds")
    assert config.beta1 == 0.9


def test_flags_override_the_config_file_and_a_masked_run_gets_its_defaults(
    tmp_path: Path,
) -> None:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"epochs": 7, "sigma": 0.8}))
    args = ["clip.mp4", "--out", str(tmp_path), "--config", str(file), "--epochs", "9"]
    config = build_train_config(parsed(train, args), masked=True)
    assert (config.epochs, config.sigma) == (9, 0.8)
    assert config.langevin_steps == RECOVERY_DEFAULTS["langevin_steps"]
    assert config.learn_steps == RECOVERY_DEFAULTS["learn_steps"]


def test_synthesis_flags_old_and_new(tmp_path: Path) -> None:
    base = ["model.safetensors", "--out", str(tmp_path)]
    old = given_fields(SynthesisConfig, parsed(synthesize, [*base, "--format", "mp4,gif"]))
    new = given_fields(SynthesisConfig, parsed(synthesize, [*base, "--formats", "mp4,gif"]))
    assert old == new == {"formats": ("mp4", "gif")}
    fresh = given_fields(SynthesisConfig, parsed(synthesize, [*base, "--content", "fresh"]))
    assert SynthesisConfig.model_validate(fresh).content is None
    assert given_fields(SynthesisConfig, parsed(synthesize, base)) == {}


def test_a_bad_value_names_the_field_as_its_flag(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    args = ["train", str(clip), "--out", str(tmp_path / "o"), "--langevin-delta", "-1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "langevin-delta: Input should be greater than 0" in (
        result.output
    )
