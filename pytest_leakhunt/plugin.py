"""pytest entry point of leakhunt (``pytest11``): options, markers, one plugin object.

This module only wires. The plugin object (:class:`pytest_leakhunt.session.LeakHunt`) owns the
run's state; the measuring, budget checks, leak hunting and explanations are the library's.
``-p no:leakhunt`` turns all of it off.
"""

from __future__ import annotations

import pytest

from pytest_leakhunt.markers import MARKERS
from pytest_leakhunt.options import Settings, addoption


def pytest_addoption(parser: pytest.Parser) -> None:
    addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    for help_text in MARKERS.values():
        config.addinivalue_line("markers", help_text)
    settings = Settings.from_config(config)

    from pytest_leakhunt.session import PLUGIN_NAME, LeakHunt

    leakhunt = LeakHunt(config, settings)
    config.pluginmanager.register(leakhunt, PLUGIN_NAME)
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
