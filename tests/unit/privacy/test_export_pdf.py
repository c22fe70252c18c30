"""The export PDF: valid, deterministic, and really renders (rasterised with poppler's pdftoppm).

poppler-utils is a test dependency (installed by the Makefile and CI); without it these tests
fail rather than skip, so a missing tool can never pass as a green run.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from credit_commons.core.errors import ValidationError
from credit_commons.privacy.pdf import render_export_pdf

GENERATED_AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TOKEN = "idt_Ab3dEf6hIj9kLm"


def _export(**changes: Any) -> dict[str, Any]:
    export: dict[str, Any] = {
        "format": "credit-commons-export/v1",
        "subject": {
            "identity_token": TOKEN,
            "kind": "person",
            "roles": ["citizen", "farmer"],
            "verification_level": "basic",
            "created_at": "2026-01-05T10:00:00Z",
        },
        "profile": {
            "name": "A & B <x>",
            "phone": "+919812345678",
            "email": "ab@example.org",
            "address": "12 Mill Road\nVaranasi",
        },
        "attributes": {"age": 61, "state": "UP", "income_annual": 240000, "smallholder": True},
        "identifiers": [{"kind": "pan", "pseudonym": "p1:9f86d081884c7d659a2feaa0c55ad015"}],
        "delegations": [
            {"kind": "guardian_ward", "permissions": ["view", "consent"], "expires_at": None}
        ],
        "credentials": [],
        "consents": [{"lender": "Sahyog Bank", "purpose": "loan", "granted_at": "2026-02-01"}],
        "access_history": [
            {
                "at": "2026-02-02T08:00:00Z",
                "lender": "Sahyog Bank",
                "purpose": "loan",
                "outcome": "denied",
                "event_id": "evt_1",
            }
        ],
        "events": [{"id": "evt_1", "type": "consent.granted", "at": "2026-02-01T00:00:00Z"}],
        "notes_from_support": {"ticket": "SUP-4411", "text": "Unknown keys are kept"},
    }
    export.update(changes)
    return export


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install poppler-utils (apt-get install poppler-utils)")
    return path


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "export.pdf"
    path.write_bytes(data)
    return path


def _text(path: Path) -> str:
    result = subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(path), "-"],
        check=True,
        capture_output=True,
    )
    return result.stdout.decode("utf-8")


def _pages(path: Path) -> int:
    result = subprocess.run([_tool("pdfinfo"), str(path)], check=True, capture_output=True)
    line = next(x for x in result.stdout.decode().splitlines() if x.startswith("Pages:"))
    return int(line.split()[1])


def _assert_first_page_renders(path: Path) -> None:
    subprocess.run(
        [
            _tool("pdftoppm"),
            "-png",
            "-r",
            "50",
            "-f",
            "1",
            "-l",
            "1",
            str(path),
            str(path.parent / "page"),
        ],
        check=True,
        capture_output=True,
    )
    pngs = sorted(path.parent.glob("page*.png"))
    assert len(pngs) == 1
    assert pngs[0].stat().st_size > 2000
    with Image.open(pngs[0]) as image:
        assert image.size[0] > 300
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
        assert colours is not None
        assert len(colours) > 1, "the first page is blank"


def test_is_a_pdf_and_deterministic() -> None:
    first = render_export_pdf(_export(), generated_at=GENERATED_AT)
    assert first.startswith(b"%PDF-")
    assert first.rstrip().endswith(b"%%EOF")
    assert render_export_pdf(_export(), generated_at=GENERATED_AT) == first
    later = GENERATED_AT + timedelta(seconds=1)
    assert render_export_pdf(_export(), generated_at=later) != first


def test_first_page_rasterises(tmp_path: Path) -> None:
    _assert_first_page_renders(
        _write(tmp_path, render_export_pdf(_export(), generated_at=GENERATED_AT))
    )


def test_text_holds_the_export(tmp_path: Path) -> None:
    text = _text(_write(tmp_path, render_export_pdf(_export(), generated_at=GENERATED_AT)))
    assert "Your data held by Credit Commons" in text
    assert "2026-03-01T09:30:00+00:00" in text
    assert TOKEN in text
    assert "+919812345678" in text
    assert "denied" in text
    assert "A & B <x>" in text
    assert "p1:9f86d081884c7d659a2feaa0c55ad015" in text
    assert "notes_from_support" in text  # an unknown top-level key is rendered, not dropped
    assert "SUP-4411" in text
    assert "Page 1" in text


def test_markup_in_values_prints_literally(tmp_path: Path) -> None:
    hostile = '<font name="NoSuchFont">x</font> </para> &amp; <br/>'
    export = _export(profile={"name": hostile})
    text = _text(_write(tmp_path, render_export_pdf(export, generated_at=GENERATED_AT)))
    assert '<font name="NoSuchFont">x</font> </para> &amp; <br/>' in text


def test_devanagari_renders(tmp_path: Path) -> None:
    # The full check of Indian scripts (extraction, glyphs, shaping) is in
    # test_export_pdf_scripts.py; this one keeps the first page rendering with them.
    export = _export(profile={"name": "राम कुमार", "address": "वाराणसी, उत्तर प्रदेश"})
    path = _write(tmp_path, render_export_pdf(export, generated_at=GENERATED_AT))
    _assert_first_page_renders(path)
    assert "राम" in _text(path)


def test_long_access_history_spans_pages(tmp_path: Path) -> None:
    history = [
        {
            "at": f"2026-02-02T08:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "lender": f"Lender {i}",
            "purpose": "loan",
            "outcome": "allowed" if i % 3 else "denied",
            "event_id": f"evt_{i}",
        }
        for i in range(500)
    ]
    path = _write(
        tmp_path, render_export_pdf(_export(access_history=history), generated_at=GENERATED_AT)
    )
    assert _pages(path) >= 5
    text = _text(path)
    assert "Lender 499" in text
    assert "Page 5" in text


def test_a_value_longer_than_a_page_is_split(tmp_path: Path) -> None:
    credential = "eyJhbGciOiJFZERTQSJ9." + "QUJD" * 6000
    export = _export(credentials=[{"format": "vc+sd-jwt", "credential": credential}])
    path = _write(tmp_path, render_export_pdf(export, generated_at=GENERATED_AT))
    assert _pages(path) >= 2


@pytest.mark.parametrize("fmt", ["credit-commons-export/v2", "", None, 1])
def test_wrong_format_is_rejected(fmt: object) -> None:
    with pytest.raises(ValidationError) as info:
        render_export_pdf(_export(format=fmt), generated_at=GENERATED_AT)
    assert info.value.extra == {"field": "format"}


def test_missing_format_is_rejected() -> None:
    export = _export()
    del export["format"]
    with pytest.raises(ValidationError):
        render_export_pdf(export, generated_at=GENERATED_AT)


def test_naive_generated_at_is_rejected() -> None:
    with pytest.raises(ValidationError):
        render_export_pdf(_export(), generated_at=datetime(2026, 3, 1, 9, 30))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extra=st.dictionaries(st.text(min_size=1, max_size=12), JSON, max_size=3))
def test_any_json_renders(extra: dict[str, Any]) -> None:
    export = _export()
    export.update({k: v for k, v in extra.items() if k != "format"})
    assert render_export_pdf(export, generated_at=GENERATED_AT).startswith(b"%PDF-")
