"""Figure layout shared by the method views: a title in a band of its own, clear of plotly's toolbar.

Plotly draws its toolbar (the mode bar: zoom, pan, save) over the top-right corner of every figure, inside the top
margin. A title centred in a narrow margin, or the subplot titles of the top row, sit right under it and are
covered (issue 29). :func:`title_band` puts the title at the top left, in its own band, and makes the top margin
tall enough for that band, the toolbar and ``extra`` pixels of subplot titles, so nothing the figure says is hidden.
"""

from __future__ import annotations

import plotly.graph_objects as go

TOOLBAR_PX = 30  # the height plotly's mode bar takes at the figure's top right
LINE_PX = 18  # one line of a 13 px title or of an 11 px subplot title, with its spacing


def title_band(fig: go.Figure, text: str = "", font_size: int = 13, extra: int = 0) -> go.Figure:
    """``fig`` with ``text`` left-aligned at its top and a top margin of the title's lines (at least the toolbar's
    height) plus ``extra`` pixels for what sits above the plots (e.g. ``LINE_PX`` per line of subplot titles)."""
    lines = text.count("<br>") + 1 if text else 0
    band = max(TOOLBAR_PX, 8 + LINE_PX * lines)
    fig.update_layout(title=dict(text=text, x=0.005, xref="container", xanchor="left", y=1, yref="container",
                                 yanchor="top", pad=dict(t=8), font_size=font_size),
                      margin_t=band + extra + 6)
    return fig
