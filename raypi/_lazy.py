"""Package exports that load on first use, so importing a package stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def exports(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """Return a module ``__getattr__`` that imports ``package.<module>`` when a name is used.

    Args:
        package: The package, e.g. ``raypi.sweep``.
        names: Exported name → module inside the package that defines it.

    Returns:
        The ``__getattr__`` to assign in the package's ``__init__``.
    """

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{names[name]}"), name)

    return __getattr__
