"""The accessible form macros: a label for every field, hints and errors tied to it by
``aria-describedby``, ``aria-invalid`` only on an error, and an error summary linking to
each field."""

from __future__ import annotations

from credit_commons.web.render import environment

_MACROS = '{% import "_forms.html" as forms %}'


def _render(body: str, **values: object) -> str:
    return environment("en").from_string(_MACROS + body).render(**values)


def test_a_field_without_hint_or_error() -> None:
    html = _render('{{ forms.input("mobile", "Mobile number") }}')
    assert '<label for="field-mobile">Mobile number</label>' in html
    assert 'id="field-mobile" name="mobile"' in html
    assert "aria-describedby" not in html
    assert "aria-invalid" not in html


def test_a_field_with_hint_and_error() -> None:
    html = _render(
        '{{ forms.input("mobile", "Mobile", hint="Ten digits", error=err, value=v) }}',
        err="Enter ten digits",
        v='"><script>',
    )
    assert 'aria-describedby="hint-mobile error-mobile"' in html
    assert 'aria-invalid="true"' in html
    assert '<p class="hint" id="hint-mobile">Ten digits</p>' in html
    assert '<p class="field-error" id="error-mobile">Enter ten digits</p>' in html
    assert "<script>" not in html  # the value is escaped


def test_radios_are_a_fieldset_with_a_legend() -> None:
    html = _render('{{ forms.radios("role", "Sign in as", [("a", "A"), ("b", "B")], "b") }}')
    assert "<legend>Sign in as</legend>" in html
    assert 'id="field-role-b" name="role" value="b" checked' in html
    assert '<label for="field-role-a">A</label>' in html


def test_the_error_summary_links_to_each_field() -> None:
    html = _render(
        "{{ forms.error_summary(errors, labels) }}",
        errors={"mobile": "Enter ten digits"},
        labels={"mobile": "Mobile"},
    )
    assert 'role="alert"' in html
    assert '<a href="#field-mobile">Mobile: Enter ten digits</a>' in html
    assert _render("{{ forms.error_summary({}, {}) }}").strip() == ""


def test_the_csrf_field() -> None:
    assert _render('{{ forms.csrf("tok") }}') == (
        '<input type="hidden" name="csrf_token" value="tok">'
    )
