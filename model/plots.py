"""The loss-curve picture written after training."""

from __future__ import annotations

from pathlib import Path

from model.files import atomic_path


def write_loss_curve(path: Path, losses: list[float], mses: list[float]) -> None:
    """PNG of the energy and visible MSE per epoch, log scale."""
    import matplotlib

    matplotlib.use("Agg")  # no screen on servers
    from matplotlib import pyplot as plt

    figure, left = plt.subplots(figsize=(6, 3.5), dpi=100)
    epochs = range(1, len(losses) + 1)
    left.plot(epochs, losses, color="tab:blue", label="energy")
    left.set_xlabel("epoch")
    left.set_ylabel("energy per chunk", color="tab:blue")
    left.set_yscale("log")
    right = left.twinx()
    right.plot(epochs, mses, color="tab:orange", label="visible MSE")
    right.set_ylabel("visible MSE", color="tab:orange")
    right.set_yscale("log")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
