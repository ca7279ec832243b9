"""bf16 autocast keeps the energy and the Langevin drift equal to fp32 within a few percent."""

from __future__ import annotations

import numpy as np
import torch

from model.learner import ABPTTLearner
from model.procedural import waves
from model.video_frames import to_tensor_scale
from tests.model.conftest import tiny_config


def test_bf16_energy_and_gradient_match_fp32() -> None:
    clip = torch.from_numpy(to_tensor_scale(waves(16, 16)))[None]
    learner = ABPTTLearner(tiny_config(precision="fp32", base_channels=16), clip, seed=0)
    learner.fit(epochs=20)  # trained weights, so the residual is not just noise
    results = {}
    for bf16 in (False, True):
        learner.bf16 = bf16
        latents = learner._chunk_latents(0, 8)
        noise = latents["noise"].requires_grad_(True)
        energy, *_ = learner._energy(0, 8, learner.latents.initial_state, latents, True)
        (grad,) = torch.autograd.grad(energy, [noise])
        results[bf16] = (float(energy.detach()), grad)
    (e32, g32), (e16, g16) = results[False], results[True]
    assert abs(e16 - e32) / e32 < 0.03, (e32, e16)
    cosine = float(torch.nn.functional.cosine_similarity(g32.flatten(), g16.flatten(), dim=0))
    assert cosine > 0.98, cosine


def test_the_latents_and_optimiser_stay_fp32_under_bf16() -> None:
    clip = torch.from_numpy(to_tensor_scale(waves(16, 16)))[None]
    learner = ABPTTLearner(tiny_config(precision="bf16", epochs=2), clip, seed=0)
    learner.fit()
    assert learner.latents.noise.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in learner.model.parameters())
    assert np.isfinite(learner.history[-1].loss)
