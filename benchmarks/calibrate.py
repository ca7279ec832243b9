"""Calibrate a trained model afterwards (QUALITY.md's anchor and gain rows).

python -m benchmarks.calibrate MODEL VIDEO OUT [--anchor] [--motion] [--seed 0]
Fits what `anchor: chains` and `motion_calibration: clip` fit at the end of training
(model/calibration.py) to MODEL and its clip, writes the model with it to OUT, prints the fit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.calibration import add_calibration
from model.outputs import json_safe


def main() -> None:
    """Write the calibrated model and print what the fit found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("video", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--anchor", action="store_true", help="fit the state anchor")
    parser.add_argument("--motion", action="store_true", help="fit the motion gain")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    facts = add_calibration(args.model, [args.video], args.out, args.anchor, args.motion, args.seed)
    print(json.dumps(json_safe(facts), indent=2))


if __name__ == "__main__":
    main()
