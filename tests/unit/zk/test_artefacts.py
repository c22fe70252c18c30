"""The committed dev artefacts match their manifest and stay small."""

from __future__ import annotations

import hashlib
import json

from credit_commons.zk.prover import ARTEFACTS_DIR, STATEMENTS


def test_manifest_lists_every_artefact_with_its_sha256() -> None:
    manifest = json.loads((ARTEFACTS_DIR / "manifest.json").read_text())
    assert manifest["provenance"] == "dev"
    assert (manifest["curve"], manifest["protocol"]) == ("bls12381", "groth16")
    assert sorted(manifest["statements"]) == sorted(STATEMENTS)
    for statement, files in manifest["statements"].items():
        assert sorted(files) == ["circuit.wasm", "circuit.zkey", "verification_key.json"]
        for name, entry in files.items():
            data = (ARTEFACTS_DIR / statement / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            assert (
                len(data) == entry["size"] < 2_500_000
            )  # member_of_group's key is the largest: 2.2 MB
