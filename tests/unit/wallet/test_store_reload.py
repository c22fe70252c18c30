"""wallet/store.py and `commons wallet proofs`: the key derived once per process is reused
for saves and reloads (the local server saves its proof history per request), a file another
process re-keyed still opens, a wrong passphrase or a tampered file stays one error, and the
proof history is bounded and listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.commons_inprocess import commons

from credit_commons.wallet.store import Wallet, WalletLocked

PASSPHRASE = "correct horse battery staple"


def test_saves_reuse_the_salt_with_a_fresh_nonce(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    wallet = Wallet.create(path, PASSPHRASE)
    first = json.loads(path.read_text())
    wallet.contents["proofs"] = [{"outcome": "proved"}]
    wallet.save()
    second = json.loads(path.read_text())
    assert second["kdf"] == first["kdf"]
    assert second["nonce"] != first["nonce"]
    assert Wallet.open(path, PASSPHRASE).contents["proofs"] == [{"outcome": "proved"}]


def test_reload_sees_another_process_s_change_and_new_salt(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    served = Wallet.create(path, PASSPHRASE)
    salt = json.loads(path.read_text())["kdf"]["salt"]
    other = Wallet(path, PASSPHRASE, dict(Wallet.open(path, PASSPHRASE).contents))
    other.add_credential("x~", issuer="https://i", configuration="C", received_at="now")
    other.save()  # a fresh salt: no key cached in this object
    assert json.loads(path.read_text())["kdf"]["salt"] != salt
    served.reload()
    assert [c.credential for c in served.credentials] == ["x~"]


def test_wrong_passphrase_and_tampering_are_one_error(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    wallet = Wallet.create(path, PASSPHRASE)
    with pytest.raises(WalletLocked):
        Wallet.open(path, "not it")
    document = json.loads(path.read_text())
    document["ciphertext"] = document["ciphertext"][:-4] + "AAAA"
    path.write_text(json.dumps(document))
    with pytest.raises(WalletLocked):
        wallet.reload()  # the cached key does not open a tampered file either


def test_the_proof_history_is_bounded_and_listed(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    wallet = Wallet.create(path, PASSPHRASE)
    env = {"COMMONS_WALLET_FILE": str(path), "COMMONS_WALLET_PASSPHRASE": PASSPHRASE}
    empty = commons(["wallet", "proofs"], env)
    assert (empty.returncode, empty.stdout.strip()) == (0, "no proofs asked")
    for n in range(5):
        entry = {"at": f"2026-12-07T00:00:0{n}+00:00", "ctx": "shg:savings", "threshold": n,
                 "audience": "https://bank.example", "outcome": "proved"}  # fmt: skip
        wallet.record_proof(entry, keep=3)
    wallet.save()
    listed = commons(["wallet", "proofs", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert [p["threshold"] for p in json.loads(listed.stdout)] == [2, 3, 4]
    text = commons(["wallet", "proofs"], env).stdout
    assert "THRESHOLD" in text
    assert "https://bank.example" in text
