"""pytest plugin of leakhunt: memory budgets on tests, ``--leak-report`` and ``--leak-hunt``."""
