"""One model interface: every method's model file loads through `load_model` and samples alike."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch

from model.config import METHOD_MODULES, SynthesisConfig, TrainConfig
from model.errors import CheckpointError
from model.methods import file_format, load_model, method, method_of
from model.training import train_model
from tests.model.conftest import tiny_config


def test_the_config_takes_exactly_the_registered_methods_and_auto() -> None:
    names = get_args(TrainConfig.model_fields["method"].annotation)
    assert set(names) == {*METHOD_MODULES, "auto"}
    for name in METHOD_MODULES:
        module = method(name)
        assert isinstance(module.FILE_FORMAT, str) and callable(module.load_file)
        assert callable(module.train)


@pytest.mark.parametrize("name", sorted(METHOD_MODULES))
def test_each_method_trains_loads_and_samples_through_one_interface(
    name: str, waves_video: Path, tmp_path: Path
) -> None:
    config = tiny_config(method=name, epochs=2, lds_components=4)
    result = train_model(config, [waves_video], tmp_path / "out", seed=0, device="cpu")
    assert method_of(result.checkpoint) == name
    assert file_format(result.checkpoint) == method(name).FILE_FORMAT
    model = load_model(result.checkpoint)
    assert model.config.frames == 16 and model.config.image_size == 16
    synthesis = SynthesisConfig(num_videos=2, frames=40)
    chunks = list(model.frame_chunks(synthesis, 0, torch.device("cpu")))
    videos = np.concatenate(chunks, axis=1)
    assert videos.shape == (2, 40, 16, 16, 3) and videos.dtype == np.uint8
    recon = model.training_reconstruction(result.checkpoint)
    assert recon is not None and recon.shape == (1, 16, 16, 16, 3)
    model.save(tmp_path / "again.safetensors")  # the same model, written again
    again = load_model(tmp_path / "again.safetensors")
    assert np.array_equal(
        np.concatenate(list(again.frame_chunks(synthesis, 0, torch.device("cpu"))), axis=1),
        videos,
    )


def test_a_file_of_no_method_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(2)}, str(other), metadata={"format": "someone-else"})
    with pytest.raises(CheckpointError, match="not a dyngen checkpoint or LDS file"):
        load_model(other)
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "missing.safetensors")
