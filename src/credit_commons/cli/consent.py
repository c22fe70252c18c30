"""``commons consent …``: consents from the command line (the CLI calls the same service
functions as the HTTP API).  ``templates`` is here; the commands that reach the database are
``cli/consent_actions.py``, loaded when one of them runs."""

from __future__ import annotations

from credit_commons.cli.support import JsonOption, emit, group, lazy, table
from credit_commons.consent.model import TEMPLATES

__all__ = ["app"]

_ACTIONS = (
    "list",
    "show",
    "approve",
    "reject",
    "pause",
    "resume",
    "revoke",
    "revoke-all",
    "history",
    "denials",
    "expire",
    "codes",
)
app = group(
    "consent",
    "Consents: decide, inspect, history.",
    cls=lazy(
        [("templates", None, False), *((name, "consent_actions", False) for name in _ACTIONS)]
    ),
)


@app.command("templates")
def templates(as_json: JsonOption = False) -> None:
    """The consent templates and their fair-use caps."""
    data = [
        {
            "name": t.name,
            "purposes": sorted(t.purposes),
            "fetch_types": sorted(t.fetch_types),
            "max_validity_days": t.max_validity.days,
            "max_data_life_days": t.max_data_life_seconds // 86_400,
            "max_fetches_per_day": t.max_fetches_per_day,
        }
        for t in TEMPLATES.values()
    ]
    columns = [
        ("name", "TEMPLATE"),
        ("purposes", "PURPOSES"),
        ("fetch_types", "FETCH TYPES"),
        ("max_validity_days", "MAX DAYS"),
        ("max_data_life_days", "DATA LIFE DAYS"),
        ("max_fetches_per_day", "FETCHES/DAY"),
    ]
    emit(as_json, data, table(data, columns))
