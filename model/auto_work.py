"""How much `method: auto`'s choice synthesizes after a training, without torch: the choice and
the calibration fits draw these many frames, and the job's budget counts them."""

from __future__ import annotations

# Each candidate is scored on AUTO_DRAWS reports of AUTO_VIDEOS syntheses (their own seeds and
# patch draws), 4x the training length: one report of two syntheses scatters by up to a
# quarter (QUALITY.md), and the candidates' distances can differ by 10 %.
AUTO_VIDEOS = 6
AUTO_DRAWS = 2
AUTO_MULTIPLE = 4
GAIN_VIDEOS = 8  # syntheses of the training length per gain tried
GAIN_STEPS = 8  # bisection steps: the gain to within a factor of 2 ** (6 / 2 ** 8)
# each set of weights (with its residual process, and without it) is scored as trained,
# anchored, with the motion gain and with both; the gain is fitted with and without the anchor
VARIANTS, GAIN_FITS = 4, 2
# then one more: the best variant with its transition made stationary (model/stationary.py;
# its fine-tune rolls states only, 18 to 36 s on one CPU thread, and decodes no frame)
REFINED = 1


def choice_frames(frames: int, residual: bool) -> int:
    """Frames the choice decodes after a training on `frames` frames: the gain fits (the
    bisection and its two ends) and the scored syntheses of every candidate."""
    weights = 2 if residual else 1
    gain_fits = GAIN_FITS * (GAIN_STEPS + 2) * GAIN_VIDEOS * frames
    scored = AUTO_DRAWS * AUTO_VIDEOS * AUTO_MULTIPLE * frames  # of one candidate
    return weights * (gain_fits + VARIANTS * scored) + REFINED * scored
