"""``python -m credit_commons.cli``: the ``commons`` command."""

from credit_commons.cli import run

run()
