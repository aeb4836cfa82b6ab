"""One module per case, each exposing ``CASE``; see :data:`casebook.CASE_NAMES` for the order."""
