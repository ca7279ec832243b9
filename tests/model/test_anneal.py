"""The learning rate's anneal over the last epochs of a run (`lr_anneal`)."""

from __future__ import annotations

import itertools
import math

import pytest

from model.config import TrainConfig, run_fields
from model.learner import ABPTTLearner, anneal_factor
from tests.model.conftest import tiny_config
from tests.model.test_learner import clip_tensor


def test_the_rate_is_constant_until_the_tail_then_falls_along_a_half_cosine() -> None:
    factors = [anneal_factor(epoch, 10, 0.3) for epoch in range(10)]
    assert factors[:7] == [1.0] * 7
    # the tail's three epochs sit at a quarter, a half and three quarters of the cosine
    expected = [0.5 * (1 + math.cos(math.pi * step / 4)) for step in (1, 2, 3)]
    assert factors[7:] == pytest.approx(expected)
    assert all(later < earlier for earlier, later in itertools.pairwise(factors[6:]))
    assert factors[-1] > 0  # the last epoch still steps


def test_no_anneal_keeps_the_configured_rate() -> None:
    assert {anneal_factor(epoch, 50, 0.0) for epoch in range(50)} == {1.0}


def test_each_epoch_steps_every_group_at_its_annealed_rate() -> None:
    config = tiny_config(epochs=4, lr_anneal=0.5, transition_lr_scale=3.0)
    learner = ABPTTLearner(config, clip_tensor(), seed=0)
    for epoch in range(4):
        learner.train_epoch()
        factor = anneal_factor(epoch, 4, 0.5)
        rates = [group["lr"] for group in learner.optimizer.param_groups]
        rate = config.learning_rate
        assert rates == pytest.approx([3 * rate * factor, rate * factor])
    assert learner.optimizer.param_groups[0]["lr"] < 3 * config.learning_rate / 2


def test_faithful_and_recovery_keep_a_constant_rate() -> None:
    assert TrainConfig().lr_anneal == 0.3
    assert TrainConfig(preset="faithful").lr_anneal == 0.0
    masked = TrainConfig(**run_fields({"epochs": 10}, masked=True))
    assert masked.lr_anneal == 0.0
    assert TrainConfig(**run_fields({"lr_anneal": 0.5}, masked=True)).lr_anneal == 0.5
