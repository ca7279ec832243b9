"""`method: auto` keeps the better model on held-back frames; the report warns of still videos."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from model.choice import (
    best_variant,
    candidates,
    choose_model,
    pick,
    refine_best,
    without_residual,
)
from model.lds import LDSConfig, fit_lds, sample_lds, save_lds
from model.masks import MissingFramesMask
from model.quality import quality_report, quality_warnings
from model.training import train_model
from model.video_frames import read_clips
from tests.model.conftest import tiny_config

SETTINGS = LDSConfig(image_size=16, frames=16, components=6)
BASES = ("abptt", "abptt_plain")
CALIBRATED = tuple(f"{b}{s}" for b in BASES for s in ("_anchored", "_gain", "_anchored_gain"))


@pytest.fixture
def long_waves(tmp_path: Path) -> Path:
    """48 frames of the procedural texture: 16 to fit on, 32 held back."""
    from model.procedural import waves
    from model.video_writers import write_video

    path = tmp_path / "waves48.mp4"
    write_video(path, iter(waves(48, 16)), 25)
    return path


def frozen(lds: object) -> object:
    """The same LDS without noise and with A = I: every synthesis is its first frame."""
    n = lds.components  # type: ignore[attr-defined]
    return dataclasses.replace(lds, transition=np.eye(n), noise=np.zeros((n, n)))  # type: ignore[call-overload]


def test_auto_keeps_the_model_closer_to_the_held_back_frames(long_waves: Path) -> None:
    lds = fit_lds(read_clips([long_waves], SETTINGS), SETTINGS)
    # the still model first: a tie would keep it, so only a lower score makes the LDS win
    choice = choose_model({"still": frozen(lds), "lds": lds}, long_waves, SETTINGS, 0, "cpu")
    assert choice["kept"] == "lds"
    assert "32 held-back frames" in choice["reference"]
    assert choice["scores"]["lds"]["dynamics"] < choice["scores"]["still"]["dynamics"]
    assert f"{choice['scores']['still']['dynamics']:.4g}" in choice["why"]
    assert choice["why"].startswith("kept lds")


def test_auto_without_frames_after_the_clip_says_what_it_scored_against(tmp_path: Path) -> None:
    from model.procedural import waves
    from model.video_writers import write_video

    write_video(tmp_path / "short.mp4", iter(waves(16, 16)), 25)
    lds = fit_lds(read_clips([tmp_path / "short.mp4"], SETTINGS), SETTINGS)
    choice = choose_model({"lds": lds}, tmp_path / "short.mp4", SETTINGS, 0, "cpu")
    assert choice["kept"] == "lds" and "training clip" in choice["reference"]


def test_a_run_with_method_auto_keeps_one_model_and_reports_all(long_waves: Path) -> None:
    from model.checkpoint import load_checkpoint
    from model.methods import file_format

    out = long_waves.parent / "auto"
    result = train_model(tiny_config(method="auto", epochs=4), [long_waves], out, device="cpu")
    metrics = json.loads((out / "metrics.json").read_text())
    choice = metrics["choice"]
    # the residual is free to leave out (same weights), so auto scores both ways
    # and with the state anchor where its fit pulls (model/calibration.py)
    assert {"abptt", "abptt_plain", "lds"} <= set(choice["scores"])
    # one more: the best of those with its transition made stationary (model/stationary.py)
    refined = choice["stationary"]
    assert refined["name"] == f"{refined['of']}_stationary" and refined["seconds"] > 0
    assert set(choice["scores"]) == {"abptt", "abptt_plain", "lds", refined["name"]} | (
        set(choice["scores"]) & set(CALIBRATED)
    )
    first_round = {n: s for n, s in choice["scores"].items() if n not in ("lds", refined["name"])}
    assert refined["of"] == best_variant(first_round)
    assert {"abptt_gain", "abptt_plain_gain"} <= set(choice["scores"]), "the gain is always fitted"
    assert choice["kept"] in choice["scores"] and choice["why"].startswith(f"kept {choice['kept']}")
    assert len(choice["scores"]["lds"]["dynamics_by_draw"]) == 2
    assert result.metrics["choice"] == choice
    assert metrics["warnings"] == result.warnings  # what the job returns in `warnings`
    kept_format = "dyngen-lds" if choice["kept"] == "lds" else "dyngen-checkpoint"
    assert file_format(out / "model.safetensors") == kept_format
    if choice["kept"] == "abptt_plain":
        assert load_checkpoint(out / "model.safetensors").residual is None
    kept = choice["kept"]
    others = {"abptt": ["model-lds"], "lds": ["model-abptt"]}
    aside = "model-residual" if kept.startswith("abptt_plain") else "model-uncalibrated"
    if kept.endswith("_stationary"):
        assert load_checkpoint(out / "model.safetensors").config.stationary == "chains"
    for other in others.get(kept, [aside, "model-lds"]):
        assert (out / f"{other}.safetensors").is_file()
    assert any(f.kind == "alternative_model" for f in result.files)


def test_auto_leaves_out_a_residual_that_makes_the_syntheses_worse(long_waves: Path) -> None:
    from model.checkpoint import load_checkpoint

    out = long_waves.parent / "residual"
    config = tiny_config(method="abptt", epochs=4, residual="lds", residual_components=4)
    ckpt = load_checkpoint(train_model(config, [long_waves], out, device="cpu").checkpoint)
    assert ckpt.residual is not None
    # a residual process ten times too strong: syntheses of flicker, not of the clip
    loud = dataclasses.replace(
        ckpt, residual=dataclasses.replace(ckpt.residual, noise=ckpt.residual.noise * 10)
    )
    lds = fit_lds(read_clips([long_waves], SETTINGS), SETTINGS)
    models = candidates(loud, lds)
    assert list(models)[:2] == ["abptt", "abptt_plain"] and list(models)[-1] == "lds"
    assert set(models) - {"abptt", "abptt_plain", "lds"} <= set(CALIBRATED)
    assert models["abptt_plain"].residual is None
    assert models["abptt_plain"].config.residual == "none"
    # a 4-epoch model loses to the LDS; here the two residual options compete
    models = {name: models[name] for name in ("abptt", "abptt_plain")}
    choice = choose_model(models, long_waves, ckpt.config, 0, "cpu")
    # the plain weights, or their stationary refinement (the same residual: none)
    assert choice["kept"] in ("abptt_plain", "abptt_plain_stationary"), choice["why"]
    assert choice["stationary"]["of"] == "abptt_plain"
    assert without_residual(ckpt).model is ckpt.model, "the same weights"


def test_a_masked_auto_run_trains_the_dynamic_generator_and_says_so(long_waves: Path) -> None:
    out = long_waves.parent / "masked"
    mask = MissingFramesMask(frames=[3, 4, 9])
    result = train_model(tiny_config(method="auto", epochs=2), [long_waves], out, mask=mask)
    assert result.metrics["choice"]["kept"] == "abptt"
    assert "masked" in result.metrics["choice"]["why"]
    assert "scores" not in result.metrics["choice"], "a masked run scored an LDS"
    assert result.metrics["residual"]["process"] == "none", "occluded residuals were fitted"


def test_a_frozen_model_raises_the_motion_warning(long_waves: Path) -> None:
    clip = read_clips([long_waves], SETTINGS)[0]
    lds = fit_lds(clip, SETTINGS)
    still = sample_lds(frozen(lds), 2, 64)  # type: ignore[arg-type]
    notes = quality_warnings(quality_report(still, clip), reconstruction_motion=0.2)
    assert any("still pictures" in n for n in notes), notes
    assert any("reconstruction of the training clip" in n for n in notes), notes
    with_residual = quality_warnings(quality_report(still, clip), 0.2, residual=True)
    assert not any("`residual: lds`" in n for n in with_residual), "suggests what it has"
    moving = quality_report(sample_lds(lds, 2, 64), clip)
    assert not any("still pictures" in n for n in quality_warnings(moving))


def test_evaluate_prints_the_warning_for_a_frozen_model(long_waves: Path) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    lds = fit_lds(read_clips([long_waves], SETTINGS), SETTINGS)
    path = long_waves.parent / "still.safetensors"
    save_lds(path, frozen(lds))  # type: ignore[arg-type]
    result = CliRunner().invoke(cli, ["evaluate", str(path), str(long_waves)])
    assert result.exit_code == 0, result.output
    assert "warning: the syntheses move 0.00 times" in result.output


def test_auto_keeps_the_dynamic_generator_where_the_lds_cannot_stand_in() -> None:
    from model.choice import fallback_choice

    assert fallback_choice(masked=False, content_dim=0) is None, "a plain run is chosen for"
    with_content = fallback_choice(masked=False, content_dim=4)
    assert with_content is not None and with_content["kept"] == "abptt"
    assert "content vectors" in with_content["why"]
    masked = fallback_choice(masked=True, content_dim=0)
    assert masked is not None and "masked" in masked["why"]


def score(
    dynamics: float, drift: float = 1.0, motion: float = 1.0, appearance: float = 0.0
) -> dict[str, float]:
    """A candidate's scores as choose_model reports them (the fields pick reads)."""
    return {"dynamics": dynamics, "appearance": appearance, "drift": drift, "motion_ratio": motion}


def test_auto_keeps_the_lowest_distance_and_names_the_failed_checks() -> None:
    # flag's numbers (QUALITY.md): the LDS's lower distance, with a drift over the line
    scored = {"abptt_plain_gain": score(0.0126), "lds": score(0.0101, drift=1.57)}
    kept, why = pick(scored, "the clip")
    assert kept == "lds"
    assert why.startswith("kept lds") and "lds (drift 1.57 above 1.5)" in why
    flicker = {"abptt": score(0.02, motion=2.4), "lds": score(0.03)}
    kept, why = pick(flicker, "the clip")
    assert kept == "abptt" and "motion ratio 2.40 outside 0.5 to 2" in why


def test_auto_says_nothing_of_checks_when_all_pass_and_a_tie_keeps_the_first() -> None:
    passing = {"abptt": score(0.02), "lds": score(0.03)}
    kept, why = pick(passing, "the clip")
    assert kept == "abptt" and "failing" not in why
    tie = {"abptt": score(0.02), "abptt_plain": score(0.02)}
    assert pick(tie, "the clip")[0] == "abptt", "a tie keeps the preferred (first)"


def test_auto_weighs_appearance_beside_dynamics() -> None:
    # flashing_light at 500 epochs (QUALITY.md): the anchored model's dynamics 4 % lower,
    # its appearance 85 % further from the held-back frames
    scored = {
        "abptt_plain": score(0.01115, appearance=0.00846),
        "abptt_plain_anchored_gain": score(0.01076, appearance=0.01565),
    }
    kept, why = pick(scored, "the clip")
    assert kept == "abptt_plain"
    assert "0.01961 (0.01115 + 0.00846)" in why and "0.02641 (0.01076 + 0.01565)" in why


def test_the_stationary_candidate_is_made_of_the_best_variant_only(long_waves: Path) -> None:
    from model.checkpoint import load_checkpoint

    out = long_waves.parent / "refine"
    trained = train_model(tiny_config(epochs=2), [long_waves], out, device="cpu").checkpoint
    ckpt = load_checkpoint(trained)
    lds = fit_lds(read_clips([long_waves], SETTINGS), SETTINGS)
    models = {"abptt": ckpt, "abptt_plain": without_residual(ckpt), "lds": lds}
    scored = {
        "abptt": {"dynamics": 0.3, "appearance": 0.1},
        "abptt_plain": {"dynamics": 0.2, "appearance": 0.1},
        "lds": {"dynamics": 0.01, "appearance": 0.01},  # never refined, however good
    }
    refined = refine_best(models, scored, seed=0)
    assert refined is not None and refined["of"] == "abptt_plain"
    stationary = models["abptt_plain_stationary"]
    assert stationary.config.stationary == "chains" and ckpt.config.stationary == "none"
    assert stationary.model.generator is not ckpt.model.generator
    # a stationary model is not refined again; a tie keeps the variant scored first
    scored["abptt_plain_stationary"] = dict(scored["abptt_plain"])
    assert refine_best({"abptt_plain": stationary}, {"abptt_plain": scored["abptt"]}, 0) is None
    assert pick(scored | {"lds": {"dynamics": 0.5, "appearance": 0.5}}, "x")[0] == "abptt_plain"


def test_a_variant_failing_the_checks_gives_way_to_a_passing_one_within_the_margin() -> None:
    # flashing_light on two threads (QUALITY.md): the closest variant drifts 1.72, a passing
    # one is 5 % further
    scored = {
        "abptt_plain_gain": score(0.01090, drift=1.72, appearance=0.01153),
        "abptt_plain_anchored_gain": score(0.01261, drift=0.93, appearance=0.01104),
        "lds": score(0.02602, appearance=0.01774),
    }
    kept, why = pick(scored, "the clip")
    assert kept == "abptt_plain_anchored_gain"
    assert "passing the report's checks" in why and "the abptt_plain_gain is closer" in why
    # 20 % closer: the failing variant is kept, and named as failing
    scored["abptt_plain_gain"] = score(0.0080, drift=1.72, appearance=0.0100)
    kept, why = pick(scored, "the clip")
    assert kept == "abptt_plain_gain" and "abptt_plain_gain (drift 1.72 above 1.5)" in why
    # none passing: the closest, as before
    scored["abptt_plain_anchored_gain"] = score(0.0090, drift=1.9, appearance=0.0100)
    assert pick(scored, "the clip")[0] == "abptt_plain_gain"
