"""Train (once) and cache the default models every dashboard uses: ``python -m widgets.prepare``.

The dashboards would train them on first use anyway (with a progress bar); doing it up front keeps the first page
load fast. Tracking's dashboard defaults to hand-crafted features and needs no model.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def _relabel() -> None:
    from workbench.models.pretrained import digits_classifier, digits_vae

    digits_classifier()
    digits_vae()


def _whitening() -> None:
    from workbench.whitening import whitening_detector

    whitening_detector(True)
    whitening_detector(False)


def _horkd() -> None:
    from widgets.horkd import default_models

    default_models()


#: each dashboard's default models, in gallery order
DEFAULT_MODELS: dict[str, Callable[[], None]] = {"relabel": _relabel, "whitening": _whitening, "horkd": _horkd}


def main() -> None:
    for name, prepare in DEFAULT_MODELS.items():
        t0 = time.perf_counter()
        prepare()
        print(f"{name}: default models ready ({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
