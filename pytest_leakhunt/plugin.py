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

    config.pluginmanager.register(LeakHunt(config, settings), PLUGIN_NAME)
