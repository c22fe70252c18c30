"""Shared helpers for the zk tests: a module-wide Node worker and statement inputs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from credit_commons.core.encoding import JsonObject
from credit_commons.zk import NODE_DIR
from credit_commons.zk.prover import ARTEFACTS_DIR, GeneratedProof

SALT = 0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0_1234_5678_9ABC_DE
BINDING = 4242


def vkey_json(statement: str) -> JsonObject:
    document: JsonObject = json.loads((ARTEFACTS_DIR / f"{statement}.vkey.json").read_text())
    return document


def snarkjs_verifies(statement: str, proof: GeneratedProof, tmp_path: Path) -> bool:
    """snarkjs's own `groth16 verify` (an independent implementation) on the same proof."""
    (tmp_path / "proof.json").write_text(json.dumps(proof.proof))
    (tmp_path / "public.json").write_text(json.dumps(list(proof.public_signals)))
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [
            node,
            str(NODE_DIR / "node_modules" / "snarkjs" / "build" / "cli.cjs"),
            "groth16",
            "verify",
            str(ARTEFACTS_DIR / f"{statement}.vkey.json"),
            str(tmp_path / "public.json"),
            str(tmp_path / "proof.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and "OK" in result.stdout
