"""``commons consent templates`` prints a table, or JSON with ``--json`` — never Python
reprs (issue 14 item 11)."""

from __future__ import annotations

import json

import pytest

from credit_commons.cli import main
from credit_commons.consent.model import TEMPLATES


def test_templates_print_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consent", "templates"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "TEMPLATE",
        "PURPOSES",
        "FETCH",
        "TYPES",
        "MAX",
        "DAYS",
        "DATA",
        "LIFE",
        "DAYS",
        "FETCHES/DAY",
    ]
    assert [row.split()[0] for row in rows] == list(TEMPLATES)
    for row, template in zip(rows, TEMPLATES.values(), strict=True):
        assert not set("{}[]'\"") & set(row)
        cells = row.split()
        assert cells[1] == ",".join(sorted(template.purposes))
        assert cells[3] == str(template.max_validity.days)


def test_templates_print_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consent", "templates", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in data] == list(TEMPLATES)
    assert all(isinstance(t["purposes"], list) for t in data)
