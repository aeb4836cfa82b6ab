"""Memory budgets as data: the spec users write, the limits it sets, and the check.

Data only: the front ends that hold a block to a budget (:mod:`leakhunt.guard`'s
``memory_budget``, the pytest plugin, ``leakhunt run --budget``, the Dask integration) measure,
then call :func:`leakhunt.judge.judge`, which uses :func:`check`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from leakhunt import defaults
from leakhunt.units import format_limit, format_size, parse_size

if TYPE_CHECKING:
    from leakhunt.measure import Measurement

__all__ = [
    "LIMITS",
    "Budget",
    "Violation",
    "MemoryBudgetExceeded",
    "check",
    "FIGURES",
    "KEYWORDS",
]

#: Budget keywords that limit a figure of a single measurement.
FIGURES = ("rss", "peak", "traced", "arrow", "children", "file")
#: Keywords that set a limit (a budget needs one).
LIMITS = FIGURES + ("leak",)
#: Every keyword ``memory_budget`` and the pytest marker accept.
KEYWORDS = LIMITS + ("repeat", "warmup")

_FIGURE_HELP = {
    "rss": "settled anonymous RSS growth",
    "file": "file-backed RSS growth",
    "peak": "high-water mark above the start",
    "traced": "tracemalloc growth",
    "arrow": "Arrow pool growth",
    "children": "child processes' peak memory",
    "leak": "growth per call over repeats",
}

@dataclass(frozen=True)
class Budget:
    """Limits in bytes (``None``: no limit), and the repetition settings for ``leak``."""

    rss: int | None = None
    peak: int | None = None
    traced: int | None = None
    arrow: int | None = None
    children: int | None = None
    file: int | None = None
    leak: int | None = None
    repeat: int = defaults.REPEAT
    warmup: int = defaults.WARMUP
    #: the limits as the user wrote them (``(("rss", "20MB"),)``), shown beside the binary figure
    given: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def from_kwargs(cls, where: str = "", **kwargs: Any) -> Budget:
        """Validate keywords as users write them: sizes as ints or strings like ``"50 MB"``.

        Errors are ``ValueError`` naming ``where`` (a test or call), the keyword and the value.
        """
        prefix = f"{where}: " if where else ""
        unknown = sorted(set(kwargs) - set(KEYWORDS))
        if unknown:
            raise ValueError(
                f"{prefix}unknown memory budget keyword {unknown[0]!r}; "
                f"accepted keywords: {', '.join(KEYWORDS)}"
            )
        repeats = sorted(k for k in ("repeat", "warmup") if kwargs.get(k) is not None)
        if repeats and kwargs.get("leak") is None:
            raise ValueError(
                f"{prefix}{repeats[0]}={kwargs[repeats[0]]!r} only applies to leak hunting: give leak=SIZE "
                f"too (the per-call growth that counts as a leak), or drop {repeats[0]}="
            )
        values: dict[str, Any] = {}
        given = []
        for key, value in kwargs.items():
            if value is None:
                continue
            if isinstance(value, str) and key not in ("repeat", "warmup"):
                given.append((key, " ".join(value.split())))
            if key in ("repeat", "warmup"):
                low = 2 if key == "repeat" else 0
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ValueError(f"{prefix}{key}={value!r} is not valid: expected a whole number >= {low}")
                values[key] = value
                continue
            try:
                values[key] = parse_size(value)
            except ValueError as exc:
                raise ValueError(f"{prefix}{key}={value!r} is not a valid size ({exc})") from None
        return cls(**values, given=tuple(given))

    @classmethod
    def from_spec(cls, spec: str, where: str = "", keywords: Sequence[str] = KEYWORDS) -> Budget:
        """Parse ``"rss=50MB,peak=1GB"`` (the grammar of ``--memory-budget`` and ``--budget``).
        ``keywords``: the ones this front end accepts (a subset of :data:`KEYWORDS`)."""
        prefix = f"{where}: " if where else ""
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"{prefix}empty memory budget {spec!r}: expected KEY=SIZE[,KEY=SIZE...], "
                             f"e.g. 'rss=50MB,peak=1GB'")
        kwargs: dict[str, Any] = {}
        for item in spec.split(","):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ValueError(
                    f"{prefix}bad memory budget {spec!r}: {item.strip()!r} is not KEY=SIZE "
                    f"(keys: {', '.join(keywords)}; sizes like 50MB or 64KiB)"
                )
            if key not in keywords:
                raise ValueError(f"{prefix}unknown memory budget keyword {key!r}; accepted keywords: "
                                 f"{', '.join(keywords)}")
            if key in kwargs:
                raise ValueError(f"{prefix}bad memory budget {spec!r}: {key!r} is given twice")
            kwargs[key] = int(value) if key in ("repeat", "warmup") and value.isdigit() else value
        return cls.from_kwargs(where, **kwargs)

    def spec(self) -> str:
        """The budget in :meth:`from_spec`'s grammar, each limit as the user wrote it (bytes when
        not given as text): ``'rss=20MB,peak=1GB'``, what ``--memory-budget`` takes back."""
        values: dict[str, object] = dict(self.limits())
        if self.leak is not None:
            values.update(leak=self.leak, repeat=self.repeat, warmup=self.warmup)
        return ",".join(f"{name}={self.spelled(name) or value}" for name, value in values.items())

    def spelled(self, name: str) -> str | None:
        """How the user wrote the limit ``name`` (None: as bytes, or not set)."""
        return dict(self.given).get(name)

    def limits(self) -> dict[str, int]:
        """The figure limits that are set, by keyword (without ``leak``)."""
        return {name: getattr(self, name) for name in FIGURES if getattr(self, name) is not None}

    @property
    def is_empty(self) -> bool:
        return not self.limits() and self.leak is None

    def merged_over(self, default: Budget | None) -> Budget:
        """This budget, with limits it does not set taken from ``default``."""
        if default is None:
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        given = dict(self.given)
        for name in LIMITS:
            if values[name] is None:
                values[name] = getattr(default, name)
                if default.spelled(name) is not None:
                    given[name] = default.spelled(name)  # type: ignore[assignment]
        values["given"] = tuple(given.items())
        return Budget(**values)

    def describe(self) -> str:
        parts = [f"{name}={format_limit(limit, self.spelled(name))}" for name, limit in self.limits().items()]
        if self.leak is not None:
            parts.append(f"leak={format_limit(self.leak, self.spelled('leak'))}/call (repeat={self.repeat}, "
                         f"warmup={self.warmup})")
        return ", ".join(parts) or "no limits"

    def to_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def keyword_help() -> str:
    """Every keyword with its default and what it limits: the marker's help is made from it."""
    parts = [f"{name}=None" for name in LIMITS] + [f"repeat={defaults.REPEAT}", f"warmup={defaults.WARMUP}"]
    return ", ".join(parts)


@dataclass(frozen=True)
class Violation:
    """A figure that went over its limit."""

    figure: str
    value: int
    limit: int
    given: str | None = field(default=None, compare=False)  # the limit as the user wrote it

    def __str__(self) -> str:
        return (f"{_FIGURE_HELP.get(self.figure, self.figure)} {format_size(self.value)} > budget "
                f"{format_limit(self.limit, self.given)}")


def check(measurement: Measurement | Mapping[str, int | None], budget: Budget) -> list[Violation]:
    """The figures of ``measurement`` that break ``budget``. Unavailable figures never break it.

    ``measurement`` may also be a mapping of figures by keyword (``{"peak": ..., "rss": ...}``,
    with ``"leak"`` for a per-call figure), for front ends whose figures are not one block's
    (the Dask integration's per-prefix figures).
    """
    limits = dict(budget.limits())
    given = dict(budget.given)
    if isinstance(measurement, Mapping):
        if budget.leak is not None:
            limits["leak"] = budget.leak
        figure = measurement.get
    else:
        figure = measurement.figure
    out = []
    for name, limit in limits.items():
        value = figure(name)
        if value is not None and value > limit:
            out.append(Violation(name, value, limit, given.get(name)))
    return out


class MemoryBudgetExceeded(AssertionError):
    """A block or test broke its memory budget. ``str()`` is the full explanation."""

    def __init__(self, message: str, measurement: Measurement | None, violations: list[Violation]) -> None:
        super().__init__(message)
        self.measurement = measurement
        self.violations = violations

    def __reduce__(self) -> tuple[Any, ...]:
        # args holds only the message: without this, unpickling (a process pool sending the
        # failure back to its parent) calls __init__ with one argument and fails.
        return (type(self), (str(self), self.measurement, self.violations))


MemoryBudgetExceeded.__module__ = "leakhunt"
