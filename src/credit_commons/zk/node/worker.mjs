// The warm Node process behind credit_commons.zk: one JSON request per stdin line, one JSON
// answer per stdout line, in order.  Requests: {"op": "permute", "state": [dec, dec, dec]},
// {"op": "hash2", "inputs": [dec, dec]}, {"op": "prove", "wasm": path, "zkey": path,
// "input": {...}}, {"op": "witness", "wasm": path, "input": {...}}, {"op": "verify", "vkey": {...}, "publicSignals": [...], "proof": {...}}.
// Answers: {"ok": true, ...} or {"ok": false, "error": "..."}.
// The cryptography is @noble/curves' (Poseidon), circom_runtime's (the circuit's witness, by
// its circom-compiled WASM) and snarkjs's (the Groth16 proof).
import { readFileSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { WitnessCalculatorBuilder } from 'circom_runtime';
import { permute, hash2, Fr } from './poseidon.mjs';

function element(text) {
  if (typeof text !== 'string' || !/^(0|[1-9][0-9]*)$/.test(text)) throw new Error('not a decimal field element');
  const value = BigInt(text);
  if (value >= Fr.ORDER) throw new Error('not below the field modulus');
  return value;
}

let snarkjs = null;

// Each circuit's compiled witness calculator and proving-key bytes, kept between proofs:
// snarkjs's fullProve reads both files and compiles the WASM again on every call.  An entry is
// keyed by the two paths and dropped when either file's device, inode, size or mtime differ
// (the stat is taken before the read, so a file replaced in between is read again next time),
// and after a failed witness, so a calculator is only reused after a clean run.
const circuits = new Map();

function stamp(path) {
  const s = statSync(path, { bigint: true });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
}

async function circuit(wasmPath, zkeyPath) {
  if (typeof wasmPath !== 'string' || typeof zkeyPath !== 'string') throw new Error('wasm and zkey are paths');
  const key = JSON.stringify([wasmPath, zkeyPath]);
  const version = `${stamp(wasmPath)}|${stamp(zkeyPath)}`;
  const known = circuits.get(key);
  if (known !== undefined && known.version === version) return { key, ...known };
  circuits.delete(key);
  // Plain Uint8Array copies: fastfile's memory files expect slice() to copy, as a Buffer's does not.
  const calculator = await WitnessCalculatorBuilder(new Uint8Array(readFileSync(wasmPath)));
  const entry = { version, calculator, zkey: new Uint8Array(readFileSync(zkeyPath)) };
  circuits.set(key, entry);
  return { key, ...entry };
}

async function prove(request) {
  if (snarkjs === null) snarkjs = await import('snarkjs');
  const { key, calculator, zkey } = await circuit(request.wasm, request.zkey);
  let witness;
  try {
    // As snarkjs's wtns.calculate: circom_runtime's witness, in the .wtns binary format.
    witness = await calculator.calculateWTNSBin(request.input);
  } catch (error) {
    circuits.delete(key);
    throw error;
  }
  const { proof, publicSignals } = await snarkjs.groth16.prove({ type: 'mem', data: zkey }, { type: 'mem', data: witness });
  return { proof, publicSignals };
}

async function answer(request) {
  switch (request.op) {
    case 'permute':
      if (!Array.isArray(request.state) || request.state.length !== 3) throw new Error('state must hold 3 elements');
      return { state: permute(request.state.map(element)).map(String) };
    case 'hash2':
      if (!Array.isArray(request.inputs) || request.inputs.length !== 2) throw new Error('inputs must hold 2 elements');
      return { out: String(hash2(element(request.inputs[0]), element(request.inputs[1]))) };
    case 'prove':
      return await prove(request);
    case 'witness': {
      // The circuit's full witness (wire 0 is the constant 1), for tests of a circuit's values.
      if (snarkjs === null) snarkjs = await import('snarkjs');
      const wtns = { type: 'mem' };
      await snarkjs.wtns.calculate(request.input, request.wasm, wtns);
      return { witness: (await snarkjs.wtns.exportJson(wtns)).map(String) };
    }
    case 'verify':
      // snarkjs's own verifier, for cross-checks and the benchmark's baseline.
      if (snarkjs === null) snarkjs = await import('snarkjs');
      return { valid: await snarkjs.groth16.verify(request.vkey, request.publicSignals, request.proof) };
    default:
      throw new Error('unknown op');
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let reply;
  try {
    reply = { ok: true, ...(await answer(JSON.parse(line))) };
  } catch (error) {
    reply = { ok: false, error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
process.exit(0);
