#!/usr/bin/env bash
# Development trusted setup for the zk circuits (docs/zk.md, "Regenerating the artefacts").
#
# Compiles each circuit in src/credit_commons/zk/circuits with circom 2 (the WASM compiler,
# --prime bls12381), runs a powers-of-tau with ONE contributor (this machine's random entropy)
# and a Groth16 setup with one more contribution, all by snarkjs, and writes the artefacts the
# prover and verifier use (witness wasm, proving key, verification key) to
# src/credit_commons/zk/artefacts/ (<statement>.wasm, <statement>.zkey, <statement>.vkey.json:
# plain file names, as the statement registry names them) with their SHA-256 in manifest.json.
#
# Usage: scripts/zk-setup.sh [statement ...] — with names, only those circuits are recompiled and
# set up again (the others keep their keys, so proofs made with them stay valid); the manifest
# always lists every statement's files as they are on disk.
#
# Provenance "dev": whoever ran this could keep the toxic waste and forge proofs.  Production
# needs a ceremony (docs/zk.md); the statement registry refuses "dev" there.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ZK="$ROOT/src/credit_commons/zk"
NODE_DIR="$ZK/node"
BIN="$NODE_DIR/node_modules/.bin"
OUT="$ZK/artefacts"
POWER=11  # 2^11 = 2048 rows: member_of_group (depth-6 tree, --O2) has 2,006 constraints + 4
# circom2's simplification per circuit: member_of_group takes --O2 (linear constraints
# substituted away: 2,006 constraints instead of 2,623, so its FFT domain is 2^11, not 2^12);
# the others keep the default --O1 their committed keys were made with.
declare -A SIMPLIFY=([member_of_group]=--O2)
STATEMENTS=(score_at_least income_bracket_at_most age_at_least member_of_group community_score_at_least)
SELECTED=("${STATEMENTS[@]}")
if [ "$#" -gt 0 ]; then
  for name in "$@"; do
    [[ " ${STATEMENTS[*]} " == *" $name "* ]] || { echo "unknown statement: $name" >&2; exit 2; }
  done
  SELECTED=("$@")
fi

[ -x "$BIN/snarkjs" ] || npm ci --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error
node "$NODE_DIR/gen-constants.mjs" --check

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
entropy() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

"$BIN/snarkjs" powersoftau new bls12381 "$POWER" "$WORK/pot_0.ptau"
"$BIN/snarkjs" powersoftau contribute "$WORK/pot_0.ptau" "$WORK/pot_1.ptau" --name="dev" -e="$(entropy)"
"$BIN/snarkjs" powersoftau prepare phase2 "$WORK/pot_1.ptau" "$WORK/pot_final.ptau"

mkdir -p "$OUT"
for name in "${SELECTED[@]}"; do
  # circom2 (WASI) reads files relative to the working directory.
  (cd "$ZK" && "$BIN/circom2" "circuits/$name.circom" --r1cs --wasm ${SIMPLIFY[$name]:-} --prime bls12381 -o "$WORK")
  "$BIN/snarkjs" groth16 setup "$WORK/$name.r1cs" "$WORK/pot_final.ptau" "$WORK/${name}_0.zkey"
  "$BIN/snarkjs" zkey contribute "$WORK/${name}_0.zkey" "$WORK/$name.zkey" --name="dev" -e="$(entropy)"
  cp "$WORK/${name}_js/$name.wasm" "$OUT/$name.wasm"
  cp "$WORK/$name.zkey" "$OUT/$name.zkey"
  "$BIN/snarkjs" zkey export verificationkey "$WORK/$name.zkey" "$OUT/$name.vkey.json"
done

python3 - "$OUT" "${STATEMENTS[@]}" <<'PY'
import hashlib, json, sys
from pathlib import Path
out = Path(sys.argv[1])
manifest = {"provenance": "dev", "curve": "bls12381", "protocol": "groth16", "statements": {}}
for name in sys.argv[2:]:
    files = {}
    for role, file in (("wasm", f"{name}.wasm"), ("zkey", f"{name}.zkey"), ("vkey", f"{name}.vkey.json")):
        data = (out / file).read_bytes()
        files[role] = {"file": file, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest["statements"][name] = files
(out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
PY
echo "artefacts written to $OUT (provenance: dev)"
