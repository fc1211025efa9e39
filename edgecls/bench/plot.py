"""``edgecls bench --plot``: a PNG bar chart of the comparison table (matplotlib, optional)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgecls.runtime.errors import BackendUnavailableError

__all__ = ["plot_rows"]


def plot_rows(rows: Sequence[dict], path: str | Path, title: str) -> Path:
    """Write a bar chart of end-to-end p50 (with p99 whiskers) per row to ``path``.

    Raises:
        BackendUnavailableError: matplotlib is not installed (``pip install 'edgecls[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendUnavailableError("plotting needs matplotlib: pip install 'edgecls[plot]'", extra="plot") from None
    names = [f"{Path(r['model']).name}" + (f"\n{r['threads']} threads" if r.get("threads") else "") for r in rows]
    p50 = [r["p50_ms"] for r in rows]
    spread = [max(0.0, r["p99_ms"] - r["p50_ms"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4.5))
    bars = ax.bar(range(len(rows)), p50, yerr=[[0] * len(rows), spread], capsize=4, color="#4C72B0")
    for bar, r in zip(bars, rows, strict=True):
        label = f"{r['p50_ms']:.2f} ms\n{r['fps']:.0f} FPS"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(range(len(rows)), names, fontsize=8)
    ax.set_ylabel("end-to-end latency p50 (ms), whisker to p99")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
