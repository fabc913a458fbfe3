"""Make every dashboard's default (full-setting) models ready: ``python -m widgets.prepare`` (``make dashboard``).

The project ships their weights in ``workbench/weights`` (see :mod:`workbench.weights`), so this normally only loads
them; a recipe without a shipped file is trained once here (and cached) instead of on a dashboard's first page load.
"""

from __future__ import annotations

from workbench.weights import DASHBOARD_MODELS, prepare


def main() -> None:
    prepare(DASHBOARD_MODELS)


if __name__ == "__main__":
    main()
