"""The loss curve shows both curves, each on its own labelled panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from model.plots import loss_figure, write_loss_curve


def test_both_curves_are_drawn_on_their_own_labelled_panels() -> None:
    # per-frame scaling makes the energy the MSE times a constant: on shared or twin axes
    # the two curves coincide and only one shows
    mses = [0.5 / (1 + e) for e in range(20)]
    losses = [m * 1500.0 for m in mses]
    figure = loss_figure(losses, mses)
    panels = [axes for axes in figure.axes if axes.lines]
    assert len(panels) == 2
    (energy,), (mse,) = (panel.lines for panel in panels)
    assert np.allclose(energy.get_ydata(), losses)
    assert np.allclose(mse.get_ydata(), mses)
    assert list(energy.get_xdata()) == list(range(1, 21))
    assert energy.get_color() != mse.get_color()
    assert [panel.get_ylabel() for panel in panels] == ["energy per chunk", "visible MSE"]
    assert [line.get_label() for line in (energy, mse)] == ["energy", "visible MSE"]
    # the panels don't overlap on the page
    top, bottom = (panel.get_position() for panel in panels)
    assert top.y0 >= bottom.y1


def test_the_png_is_written(tmp_path: Path) -> None:
    path = tmp_path / "loss.png"
    write_loss_curve(path, [3.0, 2.0, 1.0], [0.3, 0.2, 0.1])
    assert Image.open(path).size == (600, 450)
    assert not list(tmp_path.glob("*.tmp*"))
