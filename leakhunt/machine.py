"""What a report's figures were measured on: Python, its build, the machine, the libraries.

A run's record (``leakhunt run``) and a test report both carry :func:`environment`, so that two
reports compared against each other (:mod:`leakhunt.baseline`) can say when they were measured
on different machines, Pythons or library versions: memory figures move with the allocator
(libc), the interpreter build and the data libraries as much as with the code.
"""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["environment", "LIBRARIES"]

#: Data libraries whose versions a report records when they are loaded.
LIBRARIES = ("numpy", "pandas", "pyarrow", "polars")


def _memory() -> str | None:
    """The machine's memory, from /proc/meminfo (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    kib = int(line.split()[1])
                    return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return None
    return None


def environment() -> dict[str, str]:
    """Versions and machine facts that explain a report's figures (strings, keys always the
    same where known): python, python_build, platform, machine, libc, leakhunt, and the data
    libraries already imported (never imported here)."""
    env = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": " ".join(part for part in (*platform.python_build(), platform.python_compiler()) if part),
        "platform": platform.platform(),
    }
    memory = _memory()
    machine = [platform.machine() or "unknown machine", f"{os.cpu_count() or '?'} CPUs"]
    if memory:
        machine.append(memory)
    env["machine"] = ", ".join(machine)
    libc = " ".join(part for part in platform.libc_ver() if part)
    if libc:
        env["libc"] = libc
    try:
        from leakhunt import __version__

        env["leakhunt"] = str(__version__)
    except Exception:  # pragma: no cover - the package is being assembled
        pass
    for name in LIBRARIES:
        version = getattr(sys.modules.get(name), "__version__", None)
        if version:
            env[name] = str(version)
    return env
