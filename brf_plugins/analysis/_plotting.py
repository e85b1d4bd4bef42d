"""Figure plumbing shared by the analysis modules: matplotlib is imported lazily and pyplot is never used.

Figures are built as :class:`matplotlib.figure.Figure` objects with an Agg canvas, so they work on headless
machines whatever backend is configured, leave pyplot's global figure list alone and can be created in loops
without leaking. Every plotting function returns a :class:`PlotResult` ``(figure, data)``: unpack it, save it
with ``.savefig(path)``, or let Jupyter display it (it renders as a PNG).
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

__all__ = ["PlotResult", "new_figure", "require_matplotlib"]


def require_matplotlib():
    """Import matplotlib (an optional dependency) or say how to install it."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - matplotlib is in the test and examples extras
        raise ImportError("brf_plugins.analysis plots need matplotlib: pip install 'brf-plugins[examples]' "
                          "(or pip install matplotlib). The compute functions work without it.") from err
    return matplotlib


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0, **subplot_kw):
    """A pyplot-free Figure with an Agg canvas and its axes (``squeeze=False``: always a 2-D array)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


class PlotResult(NamedTuple):
    """What a plotting function returns: the matplotlib ``figure`` and the ``data`` it shows.

    ``fig, data = plot_...(...)`` unpacks it; ``result.savefig("x.png")`` saves the figure; in Jupyter the
    result displays as the figure.
    """

    figure: Any
    data: Any

    def savefig(self, path, **kwargs) -> None:
        """``figure.savefig(path, **kwargs)`` (dpi 120 and tight bounding box unless given)."""
        kwargs.setdefault("dpi", 120)
        kwargs.setdefault("bbox_inches", "tight")
        self.figure.savefig(path, **kwargs)

    def png(self, **kwargs) -> bytes:
        """The figure as PNG bytes."""
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", **kwargs)
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:  # Jupyter display
        return self.png()

    def __repr__(self) -> str:
        return f"PlotResult(figure={self.figure!r}, data={type(self.data).__name__})"
