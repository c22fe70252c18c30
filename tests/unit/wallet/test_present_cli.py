"""``commons wallet present <request URL>``: the CLI parses, shows the plan, asks (or takes
--yes) and calls wallet/oid4vp.respond — here against the spec-implementing fake verifier,
reached through its transport (the one thing the test swaps: the network)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.wallet.oid4vp_fakes import (
    BASE,
    CLIENTS,
    KID,
    NOW,
    FakeVerifier,
    wallet_with_credential,
)

from credit_commons.cli import main
from credit_commons.cli import wallet as wallet_cli
from credit_commons.core.net import OutboundFetcher
from credit_commons.wallet import oid4vp


@pytest.fixture
def verifier(monkeypatch: pytest.MonkeyPatch) -> FakeVerifier:
    fake = FakeVerifier(CLIENTS["decentralized_identifier"], "direct_post.jwt")
    transport = httpx.MockTransport(fake.handle)

    def respond(wallet: Any, url: str, **kwargs: Any) -> oid4vp.Outcome:
        fetcher = OutboundFetcher(transport=transport, resolver=lambda _host: ["93.184.216.34"])
        try:
            return oid4vp.respond(
                wallet,
                url,
                confirm=kwargs["confirm"],
                fetcher=fetcher,
                transport=transport,
                now=lambda: NOW,
            )
        finally:
            fetcher.close()

    monkeypatch.setattr(wallet_cli, "respond", respond)
    return fake


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def commons(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    # `commons wallet present …` through the CLI's one entry point (errors to exit codes).
    def run(tmp_path: Path, *args: str, answer: str = "") -> Ran:
        wallet_with_credential(tmp_path)  # wallet.json, passphrase "pass"
        monkeypatch.setenv("COMMONS_WALLET_FILE", str(tmp_path / "wallet.json"))
        monkeypatch.setenv("COMMONS_WALLET_PASSPHRASE", "pass")
        monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        code = main(["wallet", "present", *args])
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def test_yes_presents_and_prints_the_redirect(
    tmp_path: Path, verifier: FakeVerifier, commons: Callable[..., Ran]
) -> None:
    result = commons(tmp_path, verifier.url("get"), "--yes", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer == {
        "verifier": verifier.client_id,
        "sent": True,
        "presented": [
            {"query": "pid", "credential": "c1", "claims": ["given_name", "address.city"]}
        ],
        "redirect_uri": f"{BASE}/done#response_code=rc1",
    }
    # What the holder was shown: who asks, who signed, where it goes, which claims.
    assert f"signed by {KID}" in result.stderr
    assert "c1 (identity, from https://issuer.example): given_name, address.city" in result.stderr
    assert len(verifier.received) == 1


def test_asks_and_a_no_declines(
    tmp_path: Path, verifier: FakeVerifier, commons: Callable[..., Ran]
) -> None:
    result = commons(tmp_path, verifier.url("post"), answer="n\n")
    assert result.exit_code == 0, result.output
    assert "Present these claims?" in result.stderr
    assert f"declined; {verifier.client_id} was told" in result.stdout
    assert verifier.received == []
    assert verifier.errors[0]["error"] == "access_denied"


def test_asks_and_a_yes_presents(
    tmp_path: Path, verifier: FakeVerifier, commons: Callable[..., Ran]
) -> None:
    result = commons(tmp_path, verifier.url("get"), answer="y\n")
    assert result.exit_code == 0, result.output
    assert f"presented to {verifier.client_id}" in result.stdout
    assert "continue at https://verifier.example/done#response_code=rc1" in result.stdout


def test_a_refused_request_exits_3(
    tmp_path: Path, verifier: FakeVerifier, commons: Callable[..., Ran]
) -> None:
    result = commons(tmp_path, "openid4vp://?client_id=x509_hash%3Aabc&request_uri=u", "--yes")
    assert result.exit_code == 3, result.output
    assert "x509_hash is not supported" in result.output


def test_local_presentation_still_needs_nonce_and_aud(
    tmp_path: Path, commons: Callable[..., Ran]
) -> None:
    result = commons(tmp_path, "c1")
    assert result.exit_code == 3, result.output
    assert "--nonce and --aud" in result.output
    ok = commons(
        tmp_path / "second",
        "c1",
        "--nonce",
        "n",
        "--aud",
        "https://v.example",
        "--disclose",
        "given_name",
    )
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.count("~") == 2  # <jwt>~<given_name>~<kb-jwt>


@pytest.mark.parametrize(("answer", "told"), [("n\n", False), ("y\n", True)])
def test_nothing_to_present_asks_before_the_verifier_is_told(
    tmp_path: Path,
    verifier: FakeVerifier,
    commons: Callable[..., Ran],
    answer: str,
    told: bool,
) -> None:
    # §15.4.1: no response without the holder's interaction, even when nothing matches (here
    # a value: the held given_name is Asha); the decline told is the one a "no" sends.
    (query,) = verifier.params["dcql_query"]["credentials"]
    mismatch = {**query, "claims": [{"path": ["given_name"], "values": ["Ravi"]}]}
    verifier.params = {**verifier.params, "dcql_query": {"credentials": [mismatch]}}
    result = commons(tmp_path, verifier.url("get"), answer=answer)
    assert result.exit_code == 3, result.output
    assert "nothing in this wallet answers the request" in result.stderr
    assert "Tell it you decline?" in result.stderr
    assert verifier.errors == ([{"error": "access_denied", "description": None}] if told else [])
