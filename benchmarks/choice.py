"""What `method: auto` would keep, for models already trained (QUALITY.md's auto column).

python -m benchmarks.choice MODEL LDS VIDEO [--seed 0]
Scores the model files on the video's held-back frames exactly as a `method: auto` run does
(model/choice.py: MODEL, MODEL without its residual process if it has one, each with the
state anchor, the motion gain and both, and LDS) and
prints the choice as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.choice import candidates, choose_model
from model.methods import load_model
from model.outputs import json_safe
from model.video_frames import read_clips


def main() -> None:
    """Print the choice among a dynamic generator and an LDS of one clip."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("lds", type=Path)
    parser.add_argument("video", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    abptt = load_model(args.model, "cpu")
    clips = read_clips([args.video], abptt.config)
    models = candidates(abptt, load_model(args.lds, "cpu"), clips)
    choice = choose_model(models, args.video, abptt.config, args.seed, "cpu")
    print(json.dumps(json_safe(choice), indent=2))


if __name__ == "__main__":
    main()
