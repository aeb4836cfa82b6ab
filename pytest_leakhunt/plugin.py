"""pytest entry point of leakhunt (``pytest11``): options, markers, one plugin object.

This module only wires. The plugin object (:class:`pytest_leakhunt.session.LeakHunt`) owns the
run's state; the measuring, budget checks, leak hunting and explanations are the library's.
``-p no:leakhunt`` turns all of it off.
"""

from __future__ import annotations

import pytest

from pytest_leakhunt.markers import MARKERS
from pytest_leakhunt.options import Settings, addoption, free_paths


def pytest_addoption(parser: pytest.Parser) -> None:
    addoption(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """``pytest --leak-hunt tests/``: the path is a path, not the option's value. pytest's first
    look at the command line (for the conftests to load) read it as the value: it is given back."""
    freed = free_paths(args)
    known = early_config.known_args_namespace
    if freed and isinstance(getattr(known, "file_or_dir", None), list):
        known.file_or_dir.extend(freed)


def pytest_configure(config: pytest.Config) -> None:
    for help_text in MARKERS.values():
        config.addinivalue_line("markers", help_text)
    settings = Settings.from_config(config)

    from pytest_leakhunt.session import PLUGIN_NAME, LeakHunt

    leakhunt = LeakHunt(config, settings)
    if settings.baseline is not None:  # read and checked now: a bad baseline is a usage error
        from pytest_leakhunt.baseline import PLUGIN_NAME as BASELINE, Regressions

        leakhunt.regressions = Regressions(leakhunt, settings)
        config.pluginmanager.register(leakhunt.regressions, BASELINE)
    config.pluginmanager.register(leakhunt, PLUGIN_NAME)
    from pytest_leakhunt import step_summary

    summary_path = step_summary.wanted(leakhunt)
    if summary_path is not None:  # GitHub Actions: the job's page gets the summary
        config.pluginmanager.register(step_summary.StepSummary(leakhunt, summary_path), step_summary.PLUGIN_NAME)
    if settings.report_file is not None and not hasattr(config, "workerinput"):  # the xdist controller writes
        from pytest_leakhunt.report_file import ReportFile

        # the session's signal handlers are installed when it starts: the write waits for them
        config.pluginmanager.register(ReportFile(settings.report_file, leakhunt.build_report,
                                                 signals_of=lambda: leakhunt.signals),
                                      "leakhunt-report-file")
    if settings.oom is not None:
        from pytest_leakhunt.oom_guard import PLUGIN_NAME as OOM_GUARD, make_guard

        config.pluginmanager.register(make_guard(config, settings.oom), OOM_GUARD)
    from pytest_leakhunt import dask_budget  # the fixture only; leakhunt.dask is imported when it is used

    config.pluginmanager.register(dask_budget, "leakhunt-dask-budget")
