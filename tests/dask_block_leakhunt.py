"""Dask worker preload: leakhunt cannot be imported on this worker (the "not installed there" fault)."""

from __future__ import annotations

import sys


class _NoLeakhunt:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "leakhunt" or name.startswith("leakhunt."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


for _name in [m for m in sys.modules if m == "leakhunt" or m.startswith("leakhunt.")]:
    del sys.modules[_name]
sys.meta_path.insert(0, _NoLeakhunt())
