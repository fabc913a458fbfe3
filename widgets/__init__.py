"""Interactive views (ipywidgets + plotly) over :mod:`workbench`: one module per method, plus the gallery.

Each method module exposes ``dashboard(...) -> ipywidgets.Widget``; the Voilà dashboards in ``notebooks/dashboards``
only call it. ``workbench`` never imports this package.
"""
