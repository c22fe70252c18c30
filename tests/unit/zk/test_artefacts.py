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
        assert sorted(files) == ["vkey", "wasm", "zkey"]
        for role, entry in files.items():
            suffix = {"wasm": ".wasm", "zkey": ".zkey", "vkey": ".vkey.json"}[role]
            assert entry["file"] == statement + suffix
            data = (ARTEFACTS_DIR / entry["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            # member_of_group's key is the largest: 3.1 MB (--O2 makes its constraints denser).
            assert len(data) == entry["size"] < 3_500_000
