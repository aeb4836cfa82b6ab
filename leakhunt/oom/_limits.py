"""The limit that will kill this process, the figure it applies to, and the values users give.

Where memory runs out decides what to watch:

- a **cgroup** (a container, ``systemd-run -p MemoryMax=``, a batch scheduler): the kernel's OOM
  killer ends a process of the group when the group's usage reaches its limit. cgroup v2 keeps
  it in ``memory.max``, v1 in ``memory.limit_in_bytes``; the group is the one
  ``/proc/self/cgroup`` names for the memory controller, under the mount ``/proc/self/mountinfo``
  gives, and the binding limit is the lowest on the way up to the mount's root. The figure is
  the group's usage (``memory.current``, ``memory.usage_in_bytes``), which counts the page
  cache too: the kernel reclaims clean cache before it kills, so near the bar the inactive file
  pages of ``memory.stat`` are taken off (the "working set", as the kubelet counts it);
- ``RLIMIT_AS`` / ``RLIMIT_DATA``: an allocation past them fails (Python raises ``MemoryError``
  where it can; C++ code such as Arrow's may abort). Their figures are the address space and
  the data segment of ``/proc/self/statm``, not resident memory;
- else the **machine**: the OOM killer acts when memory runs out; the figure is the memory in
  use (``MemTotal - MemAvailable`` of ``/proc/meminfo``), the limit all of it.

When several apply, the one with the least room left is taken. A limit the user gives
(``--memory-limit 2GB``) applies to this process's resident memory.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, replace

from leakhunt.units import ACCEPTED_UNITS, format_size, parse_size

__all__ = [
    "ACTIONS",
    "Figure",
    "Limit",
    "cgroup_limit",
    "find_limit",
    "find_limits",
    "machine_limit",
    "parse_action",
    "parse_limit",
    "parse_threshold",
    "rlimits",
    "threshold_bytes",
]

#: What the guard does after writing the diagnosis.
ACTIONS = ("continue", "stop")

_PAGE = os.sysconf("SC_PAGE_SIZE")
#: cgroup v1 writes "no limit" as the largest page-aligned signed 64-bit value; anything this
#: large is no limit.
_UNLIMITED = 1 << 62


# --------------------------------------------------------------------------------------
# reading figures: each reader keeps its file open and reads it with pread (no open per sample)


class Figure:
    """A figure the limit applies to: :meth:`read` is the cheap per-sample reading, :meth:`exact`
    the one that decides a crossing (it may cost more: it runs only near the bar)."""

    name = ""

    def read(self) -> int | None:
        raise NotImplementedError

    def exact(self, value: int) -> int:
        return value

    def close(self) -> None:
        pass


class _FileFigure(Figure):
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = -1

    def _pread(self, size: int = 4096) -> bytes | None:
        if self._pid != os.getpid():  # a descriptor of /proc/self opened before a fork is the parent's
            self._fd, self._pid = None, os.getpid()
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
        try:
            return os.pread(self._fd, size, 0)
        except OSError:
            return None

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None


class _Statm(_FileFigure):
    """A field of ``/proc/self/statm``, in bytes: 0 the address space, 1 resident, 5 data + stack."""

    def __init__(self, field: int, name: str) -> None:
        super().__init__("/proc/self/statm")
        self.field = field
        self.name = name

    def read(self) -> int | None:
        raw = self._pread(256)
        try:
            return int(raw.split()[self.field]) * _PAGE if raw else None
        except (IndexError, ValueError):
            return None


class _CgroupUsage(_FileFigure):
    """A cgroup's usage; near the bar, less its inactive file pages (clean cache the kernel takes
    back before it kills)."""

    name = "cgroup usage"

    def __init__(self, directory: str, version: int) -> None:
        super().__init__(os.path.join(directory, "memory.current" if version == 2 else "memory.usage_in_bytes"))
        self.directory = directory
        self.inactive_key = b"inactive_file" if version == 2 else b"total_inactive_file"

    def read(self) -> int | None:
        raw = self._pread(64)
        try:
            return int(raw) if raw else None
        except ValueError:
            return None

    def exact(self, value: int) -> int:
        inactive = _stat_value(os.path.join(self.directory, "memory.stat"), self.inactive_key)
        return max(0, value - (inactive or 0))


class _MachineUsed(_FileFigure):
    """Memory in use on the machine: MemTotal - MemAvailable."""

    name = "machine memory in use"

    def __init__(self, path: str = "/proc/meminfo") -> None:
        super().__init__(path)
        self._total: int | None = None

    def read(self) -> int | None:
        # Two fields of fifty: found, not parsed line by line (the watcher reads this 100 times a second).
        raw = self._pread(4096)
        if not raw:
            return None
        if self._total is None:
            self._total = _meminfo(raw).get(b"MemTotal")
        at = raw.find(b"MemAvailable:")
        if self._total is None or at < 0:
            return None
        try:
            return self._total - int(raw[at + 13:raw.index(b"k", at)]) * 1024
        except ValueError:
            return None


def _meminfo(raw: bytes) -> dict[bytes, int]:
    out = {}
    for line in raw.splitlines():
        key, _, rest = line.partition(b":")
        parts = rest.split()
        if parts:
            try:
                out[key] = int(parts[0]) * 1024  # kB
            except ValueError:
                continue
    return out


def _stat_value(path: str, key: bytes) -> int | None:
    try:
        with open(path, "rb") as f:
            for line in f:
                name, _, value = line.partition(b" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def _read_int(path: str) -> int | None:
    """An integer file of a cgroup; ``None`` for "max", unlimited, or unreadable."""
    try:
        with open(path, "rb") as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == b"max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED else value


# --------------------------------------------------------------------------------------
# limits


@dataclass(frozen=True)
class Limit:
    """A limit on this process's memory: its value, where it comes from, what it applies to.

    ``source`` says where it was found (``"cgroup v1 memory.limit_in_bytes"``, ``"RLIMIT_AS"``,
    ``"--memory-limit"``...), ``where`` the file or setting (a cgroup's directory), ``figure``
    the figure it applies to (``"cgroup usage"``, ``"rss"``, ``"address space"``,
    ``"data segment"``, ``"machine memory in use"``), and ``current`` that figure when found.
    """

    value: int
    source: str
    figure: str
    where: str = ""
    current: int | None = None

    def describe(self) -> str:
        """'2.0 GiB (cgroup v1 memory.limit_in_bytes, /sys/fs/cgroup/memory/job), on the cgroup usage'."""
        where = f", {self.where}" if self.where else ""
        return f"{format_size(self.value)} ({self.source}{where}), on the {self.figure}"

    @property
    def headroom(self) -> int | None:
        return None if self.current is None else self.value - self.current

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "source": self.source, "figure": self.figure, "where": self.where,
                "current": self.current}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Limit:
        current = data.get("current")
        return cls(value=int(data["value"]), source=str(data["source"]),  # type: ignore[call-overload]
                   figure=str(data["figure"]), where=str(data.get("where", "")),
                   current=None if current is None else int(current))  # type: ignore[call-overload]

    def reader(self) -> Figure:
        """A fresh reader of the figure this limit applies to."""
        if self.figure == "cgroup usage":
            return _CgroupUsage(self.where, 2 if "v2" in self.source else 1)
        if self.figure == "machine memory in use":
            return _MachineUsed()
        field = {"address space": 0, "rss": 1, "data segment": 5}.get(self.figure)
        if field is None:
            raise ValueError(f"no reader for the figure {self.figure!r}")
        return _Statm(field, self.figure)


def _mounts(root: str) -> list[tuple[str, str, str, str]]:
    """(mount root, mount point, fstype, super options) of every cgroup mount."""
    out = []
    try:
        with open(os.path.join(root, "proc/self/mountinfo")) as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                    out.append((fields[3], fields[4], tail[0], tail[2]))
    except OSError:
        pass
    return out


def _memberships(root: str) -> list[tuple[str, str]]:
    """(controllers, path) of each line of /proc/self/cgroup; v2's line has no controllers."""
    out = []
    try:
        with open(os.path.join(root, "proc/self/cgroup")) as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    out.append((parts[1], parts[2]))
    except OSError:
        pass
    return out


def _group_dir(root: str, mount_root: str, mount_point: str, path: str) -> str:
    """The directory of the group at ``path`` under a mount of the hierarchy's ``mount_root``."""
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root.rstrip("/") + "/")):
        path = path[len(mount_root):]  # a bind mount of a subtree (a container's own group)
    directory = os.path.join(root, mount_point.lstrip("/"), path.lstrip("/"))
    if not os.path.isdir(directory):  # a cgroup namespace may show a path that is not mounted
        directory = os.path.join(root, mount_point.lstrip("/"))
    return directory.rstrip("/") or "/"


def _lowest_up(directory: str, top: str, filename: str) -> tuple[int, str] | None:
    """The lowest limit in ``filename`` from ``directory`` up to ``top``, and where it is."""
    best: tuple[int, str] | None = None
    current = directory
    while True:
        value = _read_int(os.path.join(current, filename))
        if value is not None and (best is None or value < best[0]):
            best = (value, current)
        if current == top or len(current) <= len(top):
            return best
        current = os.path.dirname(current)


def cgroup_limit(root: str = "/") -> Limit | None:
    """The memory cgroup limit of this process (v2 first, then v1), or None.

    ``root`` prefixes every path read (``/proc/self/...``, the mounts): tests give a directory
    laid out like a machine's.
    """
    mounts = _mounts(root)
    members = _memberships(root)
    return _cgroup_v2(root, mounts, members) or _cgroup_v1(root, mounts, members)


def _cgroup_v2(root: str, mounts: list[tuple[str, str, str, str]], members: list[tuple[str, str]]) -> Limit | None:
    path = next((p for c, p in members if c == ""), None)
    for mount_root, point, fstype, _ in mounts:
        if fstype != "cgroup2" or path is None:
            continue
        directory = _group_dir(root, mount_root, point, path)
        if not os.path.exists(os.path.join(directory, "memory.max")):
            continue  # the memory controller is not enabled in this hierarchy
        found = _lowest_up(directory, os.path.join(root, point.lstrip("/")).rstrip("/"), "memory.max")
        if found is not None:
            return _cgroup(found, 2, "memory.max", "memory.current")
    return None


def _cgroup_v1(root: str, mounts: list[tuple[str, str, str, str]], members: list[tuple[str, str]]) -> Limit | None:
    path = next((p for c, p in members if "memory" in c.split(",")), None)
    for mount_root, point, fstype, options in mounts:
        if fstype != "cgroup" or "memory" not in options.split(",") or path is None:
            continue
        directory = _group_dir(root, mount_root, point, path)
        found = _lowest_up(directory, os.path.join(root, point.lstrip("/")).rstrip("/"), "memory.limit_in_bytes")
        if found is not None:
            return _cgroup(found, 1, "memory.limit_in_bytes", "memory.usage_in_bytes")
    return None


def _cgroup(found: tuple[int, str], version: int, limit_file: str, usage_file: str) -> Limit:
    value, directory = found
    return Limit(value=value, source=f"cgroup v{version} {limit_file}", figure="cgroup usage", where=directory,
                 current=_read_int(os.path.join(directory, usage_file)))


def rlimits() -> list[Limit]:
    """``RLIMIT_AS`` and ``RLIMIT_DATA`` where set (soft limits)."""
    out = []
    for name, figure in (("RLIMIT_AS", "address space"), ("RLIMIT_DATA", "data segment")):
        which = getattr(resource, name, None)
        if which is None:
            continue
        soft, _ = resource.getrlimit(which)
        if soft != resource.RLIM_INFINITY and soft > 0:
            out.append(_with_current(Limit(value=int(soft), source=name, figure=figure)))
    return out


def _with_current(limit: Limit) -> Limit:
    reader = limit.reader()
    try:
        return replace(limit, current=reader.read())
    finally:
        reader.close()


def machine_limit(path: str = "/proc/meminfo") -> Limit | None:
    """All of the machine's memory, on the memory in use."""
    try:
        with open(path, "rb") as f:
            info = _meminfo(f.read())
    except OSError:
        return None
    total, available = info.get(b"MemTotal"), info.get(b"MemAvailable")
    if total is None:
        return None
    return Limit(value=total, source="machine memory (MemTotal)", figure="machine memory in use",
                 where=path, current=None if available is None else total - available)


def find_limits() -> list[Limit]:
    """Every limit that applies to this process: its cgroup's, the rlimits, the machine's."""
    found = [limit for limit in (cgroup_limit(),) if limit is not None]
    found.extend(rlimits())
    machine = machine_limit()
    if machine is not None:
        found.append(machine)
    return found


def find_limit(limit: int | str | None = None, *, option: str = "limit") -> Limit:
    """The limit that will stop this process: ``limit`` when given (on its resident memory),
    else the one of :func:`find_limits` with the least room left.

    Raises ``ValueError`` for a bad ``limit`` (naming ``option``), or when no limit can be found.
    """
    if limit is not None:
        return _with_current(Limit(value=parse_limit(limit, option=option), source=f"given with {option}",
                                   figure="rss"))
    found = find_limits()
    if not found:
        raise ValueError(f"no memory limit found (no cgroup limit, no RLIMIT_AS or RLIMIT_DATA, no /proc/meminfo): "
                         f"give one with {option}, like '2 GB'")
    return min(found, key=lambda lim: lim.headroom if lim.headroom is not None else lim.value)


# --------------------------------------------------------------------------------------
# values users give


def parse_limit(value: int | str, *, option: str = "limit") -> int:
    """A memory limit: a size above 0 (``'2GB'``, ``'512 MiB'``, bytes as an int)."""
    try:
        size = parse_size(value)
    except ValueError as exc:
        raise ValueError(f"invalid {option} {value!r}: expected a size like '2 GB' or '512 MiB' "
                         f"(units: {ACCEPTED_UNITS})") from exc
    if size <= 0:
        raise ValueError(f"invalid {option} {value!r}: a memory limit must be above 0 B, like '2 GB'")
    return size


def parse_threshold(value: int | float | str, *, option: str = "threshold") -> float | int:
    """A threshold: a fraction of the limit (``'90%'``, or a float such as 0.9) or a size
    (``'1.5 GB'``, an int of bytes). Returns the fraction (a float) or the bytes (an int)."""
    accepted = (f"a percentage of the memory limit from 1% to 99% (like '90%') or a size below the limit "
                f"(like '1.5 GB'; units: {ACCEPTED_UNITS})")
    if isinstance(value, bool):
        raise ValueError(f"invalid {option} {value!r}: expected {accepted}")
    if isinstance(value, float):
        if not 0.01 <= value < 1:
            raise ValueError(f"invalid {option} {value!r}: a fraction must be from 0.01 to below 1; expected {accepted}")
        return value
    if isinstance(value, str) and value.strip().endswith("%"):
        number = value.strip()[:-1].strip()
        try:
            percent = float(number)
        except ValueError:
            raise ValueError(f"invalid {option} {value!r}: expected {accepted}") from None
        if not 1 <= percent < 100:
            raise ValueError(f"invalid {option} {value!r}: expected {accepted}")
        return percent / 100
    try:
        size = parse_size(value)
    except ValueError:
        raise ValueError(f"invalid {option} {value!r}: expected {accepted}") from None
    if size <= 0:
        raise ValueError(f"invalid {option} {value!r}: expected {accepted}")
    return size


def threshold_bytes(threshold: float | int, limit: Limit, *, option: str = "threshold") -> int:
    """The threshold in bytes for ``limit``; ``ValueError`` when a size is not below the limit."""
    if isinstance(threshold, float):
        return int(limit.value * threshold)
    if threshold >= limit.value:
        raise ValueError(f"invalid {option} {format_size(threshold)}: it is not below the memory limit, "
                         f"{limit.describe()}; give a percentage like '90%' or a smaller size")
    return threshold


def parse_action(value: str, *, option: str = "action") -> str:
    """``'continue'`` or ``'stop'``."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in ACTIONS:
        raise ValueError(f"invalid {option} {value!r}: expected one of {', '.join(ACTIONS)} "
                         "(continue: write the diagnosis and carry on; stop: write it, then raise "
                         "MemoryError in the guarded thread)")
    return str(text)
