"""Every decoder in ``core`` answers ANY text (and bytes, where it takes bytes) with a value or
the project's own error — never a ``UnicodeError``, ``RecursionError``, ``TypeError`` or
``ValueError`` that would become a 500 (issue 12 item 10).

The strategies draw from the whole of Unicode, lone surrogates included (JSON's ``\\ud800``
escapes put them into Python strings), and the examples pin what found the bugs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from credit_commons.core.encoding import (
    b64_decode,
    b64url_decode,
    canonical_json,
    hex_decode,
    json_decode,
)
from credit_commons.core.errors import CommonsError, ValidationError
from credit_commons.core.ids import IdGenerator, is_valid_id
from credit_commons.core.net import FetchFailed, OutboundFetcher, UnsafeUrl, system_resolver
from credit_commons.core.pseudonym import Pseudonymizer

ANY_TEXT = st.text(alphabet=st.characters(codec=None), max_size=80)
SURROGATE = "\ud800"


def either_value_or_own_error(decode: Callable[[Any], object], value: Any) -> None:
    with contextlib.suppress(ValidationError):
        decode(value)


@settings(deadline=None)  # a shared, loaded machine is slow, not wrong
@given(ANY_TEXT)
@example("\u0089")  # GET /v1/log/proof/inclusion?leaf_hash=%C2%89 was a 500
@example(SURROGATE)
@example("ü" * 4)
def test_base64_decoders_take_any_text(text: str) -> None:
    either_value_or_own_error(b64url_decode, text)
    either_value_or_own_error(b64_decode, text)


@settings(deadline=None)  # a shared, loaded machine is slow, not wrong
@given(st.binary(max_size=80))
@example(b"\x89\x89\x89\x89")
def test_base64_decoders_take_any_bytes(data: bytes) -> None:
    either_value_or_own_error(b64url_decode, data)
    either_value_or_own_error(b64_decode, data)


@settings(deadline=None)  # a shared, loaded machine is slow, not wrong
@given(ANY_TEXT)
@example("0a 1b")  # bytes.fromhex skips the space: two spellings of one value
@example("0A1B")
@example("\u0660\u0661")  # Arabic-Indic digits
@example(SURROGATE)
def test_hex_decode_takes_any_text_and_only_canonical_hex(text: str) -> None:
    try:
        decoded = hex_decode(text)
    except ValidationError:
        return
    assert decoded.hex() == text


@settings(deadline=None)  # a shared, loaded machine is slow, not wrong
@given(st.one_of(ANY_TEXT, st.binary(max_size=80)))
@example("[" * 100_000)  # deeper than the interpreter's recursion limit
@example('{"a": NaN}')
@example('{"a": 1, "a": 2}')
@example(b"\xff\xfe{")
@example('"\\ud800"')
def test_json_decode_takes_any_input(value: str | bytes) -> None:
    either_value_or_own_error(json_decode, value)


@pytest.mark.parametrize(
    "bad",
    [
        "[" * 100_000,
        "[1",
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": 1e400}',  # beyond IEEE 754 double range (RFC 7493 §2.2): not inf
        "[-1.5e309]",
        '{"a": 1, "a": 2}',
        "",
        "{}x",
        "\ufeff{}",  # a byte order mark (json.loads refuses it; so does the shared decoder)
        '[{"a": {"b": 1, "b": 2}}]',  # a duplicate nested anywhere
        '[{"a": NaN}]',
    ],
)
def test_json_decode_refuses(bad: str) -> None:
    with pytest.raises(ValidationError):
        json_decode(bad)


def test_json_decode_survives_a_raised_recursion_limit() -> None:
    # py_ecc (through web3, for EVM anchoring) raises the limit to 100,000 on import; then
    # json.loads recursed on the C stack until the process crashed.
    import sys  # noqa: PLC0415

    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        with pytest.raises(ValidationError):
            json_decode("[" * 300_000 + "]" * 300_000)
    finally:
        sys.setrecursionlimit(previous)
    assert json_decode("[" * 64 + "]" * 64) is not None


def test_json_decode_one_decoder_shared_by_threads() -> None:
    # json_decode keeps one decoder (its hooks run Python code, so threads interleave in
    # it): every thread reads its own texts, with their floats and duplicate refusals.
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    def read(i: int) -> None:
        for j in range(300):
            text = f'{{"i": {i}, "j": {j}, "f": {j}.5, "o": [{{"k": "{i}"}}]}}'
            assert json_decode(text) == {"i": i, "j": j, "f": j + 0.5, "o": [{"k": str(i)}]}
            with pytest.raises(ValidationError):
                json_decode(f'{{"i": {i}, "i": {j}}}')

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(read, range(8)))


def test_json_decode_reads_json() -> None:
    assert json_decode(b'{"a": [1, 2.5, "\\u20ac", null, true]}') == {
        "a": [1, 2.5, "\u20ac", None, True]
    }


@settings(deadline=None)  # a shared, loaded machine is slow, not wrong
@given(ANY_TEXT)
@example("01ARZ3NDEKTSV4RRFFQ69G5FAV\n")
@example("evt_01ARZ3NDEKTSV4RRFFQ69G5FAV\n")
def test_ids_check_any_text(text: str) -> None:
    # A trailing newline used to pass ("$" matches before it).
    assert is_valid_id(text) == (is_valid_id(text.strip()) and text == text.strip())
    either_value_or_own_error(IdGenerator().new, text)


def test_an_id_prefix_with_a_newline_is_refused() -> None:
    with pytest.raises(ValidationError):
        IdGenerator().new("evt\n")
    assert not is_valid_id("01ARZ3NDEKTSV4RRFFQ69G5FAV\n")


@settings(deadline=None)  # a shared, loaded machine is slow, not wrong
@given(ANY_TEXT, ANY_TEXT)
@example("identity", SURROGATE)
@example("identity\n", "x")
def test_pseudonyms_take_any_text(domain: str, value: str) -> None:
    pseudonymizer = Pseudonymizer(b"p" * 32)
    either_value_or_own_error(lambda _: pseudonymizer.pseudonym(domain, value), None)


@settings(deadline=None)  # a shared, loaded machine is slow, not wrong
@given(st.recursive(st.none() | ANY_TEXT | st.integers(), lambda c: st.lists(c, max_size=3)))
@example([SURROGATE])
@example({SURROGATE: 1})
def test_canonical_json_takes_any_text(value: Any) -> None:
    either_value_or_own_error(canonical_json, value)


def _no_network(host: str) -> list[str]:
    return ["203.0.113.7"]


_GUARD = OutboundFetcher(resolver=_no_network)


# No deadline: the examples are fast, but this machine is shared and a slow one is no bug.
@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, ANY_TEXT.map(lambda t: "https://" + t)))
@example("https://[::1")  # urlsplit: "Invalid IPv6 URL"
@example("https://h\u0089st/")
@example("https://exa mple.org:99999/")
@example("https://" + SURROGATE)
def test_the_url_guard_takes_any_text(url: str) -> None:
    with contextlib.suppress(UnsafeUrl):
        _GUARD.check_url(url)


@pytest.mark.parametrize("host", ["a" * 64 + ".example", SURROGATE, "a..b", "\udcff.example"])
def test_the_system_resolver_refuses_unencodable_names_without_asking(host: str) -> None:
    # Each of these fails while the name is encoded (IDNA), before any query is sent.
    with pytest.raises(CommonsError) as raised:
        system_resolver(host)
    assert isinstance(raised.value, (FetchFailed, UnsafeUrl))


def test_patterns_outside_core_refuse_a_trailing_newline() -> None:
    # Each of these checked "^...$" with re.match, where "$" also matches before a final
    # newline: one value had two spellings (and a did:web host carried a newline into a URL).
    from credit_commons.core.errors import NotFoundError  # noqa: PLC0415
    from credit_commons.gateway.routes.log import parse_tile_path  # noqa: PLC0415
    from credit_commons.keys.did_web import DidInvalid, did_web_url  # noqa: PLC0415
    from credit_commons.lenders import validate_purposes  # noqa: PLC0415

    assert parse_tile_path("000") == (0, None)
    with pytest.raises(NotFoundError):
        parse_tile_path("000\n")
    with pytest.raises(NotFoundError):
        parse_tile_path("000.p/5\n")
    assert did_web_url("did:web:example.org").startswith("https://example.org/")
    with pytest.raises(DidInvalid):
        did_web_url("did:web:example.org%0A")
    assert validate_purposes(["loan.underwriting"]) == ("loan.underwriting",)
    with pytest.raises(ValidationError):
        validate_purposes(["loan.underwriting\n"])
