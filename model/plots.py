"""The loss-curve picture written after training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from model.files import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def loss_figure(losses: list[float], mses: list[float]) -> Figure:
    """Two stacked panels sharing the epoch axis: the energy above, the visible MSE below."""
    from matplotlib.figure import Figure

    # One panel each: with per-frame scaling the energy is the MSE times a constant, so on
    # twin log axes the two curves lay exactly on top of each other and one vanished.
    figure = Figure(figsize=(6, 4.5), dpi=100)
    energy, mse = figure.subplots(2, 1, sharex=True)
    epochs = range(1, len(losses) + 1)
    energy.plot(epochs, losses, color="tab:blue", label="energy")
    energy.set_ylabel("energy per chunk")
    mse.plot(epochs, mses, color="tab:orange", label="visible MSE")
    mse.set_ylabel("visible MSE")
    mse.set_xlabel("epoch")
    for axes in (energy, mse):
        axes.set_yscale("log")
        axes.legend(loc="upper right")
    figure.tight_layout()
    return figure


def write_loss_curve(path: Path, losses: list[float], mses: list[float]) -> None:
    """PNG of the energy and visible MSE per epoch, log scale, one panel each."""
    figure = loss_figure(losses, mses)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
