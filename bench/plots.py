"""The few chart shapes the benchmark report draws, as PNG files (matplotlib, no display)."""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _percent_axis(ax) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.05)


def _finish(plt, fig, ax, path: Path, *, ylabel: str, title: str, percent: bool) -> None:
    """Labels, legend and the PNG, as every chart ends."""
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if percent:
        _percent_axis(ax)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def grouped_bars(path: Path, groups: list[str], series: dict[str, list[float]], *,
                 ylabel: str, title: str, percent: bool = False) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(groups)), 3.6), dpi=110)
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
    _finish(plt, fig, ax, path, ylabel=ylabel, title=title, percent=percent)


def lines(path: Path, series: dict[str, tuple[list[float], list[float]]], *, xlabel: str,
          ylabel: str, title: str, percent: bool = False,
          reference: tuple[str, float] | None = None) -> None:
    """One line per series of (xs, ys); `reference` draws a labelled horizontal line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    if reference is not None:
        label, value = reference
        ax.axhline(value, color="gray", linestyle="--", label=label)
    ax.set_xlabel(xlabel)
    _finish(plt, fig, ax, path, ylabel=ylabel, title=title, percent=percent)
