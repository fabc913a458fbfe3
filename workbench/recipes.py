"""The one recipe idiom of the house (issue 25, after pytracking's parameter presets and timm's configs).

A trained thing's recipe is a frozen dataclass deriving from :class:`Recipe`: its presets are classmethods
(``full()``, ``smoke()``, named ones such as ``paper()`` or ``sbi()``), a changed copy is ``with_(...)``, and the
whole recipe is handed to :func:`workbench.cache.cached_model`, whose key is the hash of its ``asdict()``.

A field declared with :func:`optional_field` is left out of the key while it is None, so a recipe that gains such a
field keeps the key (and the shipped or cached weights) it had before.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

R = TypeVar("R", bound="Recipe")
OMIT_NONE = "workbench_omit_none"


def optional_field(default: Any = None) -> Any:
    """A recipe field that is left out of the cache key while None (see the module docstring)."""
    return dataclasses.field(default=default, metadata={OMIT_NONE: True})


def recipe_fields(recipe: Any) -> dict[str, Any]:
    """``dataclasses.asdict(recipe)`` less its :func:`optional_field` fields that are None: the cache key's dict."""
    values = dataclasses.asdict(recipe)
    for f in dataclasses.fields(recipe):
        if f.metadata.get(OMIT_NONE) and values.get(f.name) is None:
            del values[f.name]
    return values


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Base of the frozen recipes: ``full()`` (the default fields), ``smoke()`` (seconds on a CPU, for tests and
    first use; each recipe names its own), ``preset(smoke)`` and ``with_(**changes)``."""

    @classmethod
    def full(cls: type[R]) -> R:
        """The full setting (benchmarks, dashboards; meant for a GPU where it is heavy)."""
        return cls()

    @classmethod
    def smoke(cls: type[R]) -> R:
        """The smoke setting: seconds on a CPU, numbers meaningless."""
        raise NotImplementedError(f"{cls.__name__} has no smoke() preset")

    @classmethod
    def preset(cls: type[R], smoke: bool) -> R:
        """``smoke()`` if ``smoke`` else ``full()`` (pass ``workbench.runtime.smoke_mode(SMOKE)``)."""
        return cls.smoke() if smoke else cls.full()

    @property
    def is_smoke(self) -> bool:
        """True when this recipe is its class's ``smoke()`` preset (the smoke models' cache names say so)."""
        try:
            return self == type(self).smoke()
        except NotImplementedError:
            return False

    def is_smoke_but(self, *fields: str) -> bool:
        """True when this recipe is its class's ``smoke()`` preset in every field but ``fields`` (the switches a
        factory sets itself, such as a detector's ``whiten``): the smoke models' cache names say so."""
        try:
            preset = type(self).smoke()
        except NotImplementedError:
            return False
        return self == dataclasses.replace(preset, **{f: getattr(self, f) for f in fields})

    def with_(self: R, **changes: Any) -> R:
        """A copy with some fields changed; the cache key follows the fields."""
        return dataclasses.replace(self, **changes)
