"""The moving average of the weights that a trained checkpoint holds (`weight_average`)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from model.averaging import WeightAverage
from model.checkpoint import load_checkpoint
from model.config import TrainConfig
from model.learner import ABPTTLearner
from model.training import train_model
from tests.model.conftest import tiny_config
from tests.model.test_learner import clip_tensor


def test_the_average_folds_each_epoch_in_at_the_warmed_up_rate() -> None:
    layer = torch.nn.Linear(2, 1)
    average = WeightAverage(0.99)
    values = []
    for epoch in range(1, 4):
        with torch.no_grad():
            layer.weight.fill_(float(epoch))
        values.append(float(epoch))
        average.update(layer, epoch)
    # epoch 1 starts the average; epochs 2 and 3 enter with weight 1 - (1 + e) / (10 + e)
    expected = values[0]
    for epoch, value in zip((2, 3), values[1:], strict=True):
        rate = 1 - (1 + epoch) / (10 + epoch)
        expected += rate * (value - expected)
    averaged = average.averaged(layer)
    assert averaged is not layer
    assert torch.allclose(averaged.weight, torch.full((1, 2), expected))
    assert torch.equal(layer.weight, torch.full((1, 2), 3.0))  # the live weights untouched


def test_without_averaging_the_trained_model_is_the_live_one() -> None:
    learner = ABPTTLearner(tiny_config(epochs=2, weight_average=0.0), clip_tensor(), seed=0)
    learner.fit()
    assert learner.trained_model() is learner.model
    assert learner.average.state() == {}


def test_the_checkpoint_holds_the_average_and_resume_state_both(
    tmp_path: Path, waves_video: Path
) -> None:
    config = tiny_config(epochs=6, residual="none")
    result = train_model(
        config,
        [waves_video],
        tmp_path / "out",
        device="cpu",
        resume_path=tmp_path / "r.st",
        resume_every=1,
    )
    resume = load_file(str(tmp_path / "r.st"))
    saved = load_checkpoint(result.checkpoint).model.state_dict()
    differ = 0
    for name, value in saved.items():
        assert torch.equal(value, resume[f"average.{name}"]), name
        differ += not torch.equal(value, resume[f"model.{name}"])
    assert differ > 0  # the averaged weights are not the last epoch's


def test_the_faithful_preset_keeps_the_last_epochs_weights() -> None:
    assert TrainConfig(preset="faithful").weight_average == 0.0
    assert TrainConfig().weight_average == 0.99
