"""Train (once) and cache the default models every dashboard uses: ``python -m workbench.prepare``.

The dashboards would train them on first use anyway; doing it up front keeps the first page load fast.
"""

from __future__ import annotations

import importlib
import time

# (module, recipe function) for each method's dashboard defaults, in gallery order
DEFAULT_RECIPES: tuple[tuple[str, str], ...] = (
    ("workbench.models.pretrained", "digits_classifier"),
    ("workbench.models.pretrained", "digits_vae"),
)


def main() -> None:
    for module, name in DEFAULT_RECIPES:
        t0 = time.perf_counter()
        getattr(importlib.import_module(module), name)()
        print(f"{module}.{name}: ready ({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
