"""Import every module of a package, so that dropping a module into it is enough to register it."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable


def import_all(package: str, path: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Import ``package.<module>`` for each module on ``path`` (sorted, so registration order is stable)."""
    names = sorted(m.name for m in pkgutil.iter_modules(list(path)) if not m.name.startswith("_"))
    skipped = set(skip)
    for name in names:
        if name not in skipped:
            importlib.import_module(f"{package}.{name}")
    return [n for n in names if n not in skipped]
