// The warm Node process behind credit_commons.zk: one JSON request per stdin line, one JSON
// answer per stdout line, in order.  Requests: {"op": "permute", "state": [dec, dec, dec]},
// {"op": "hash2", "inputs": [dec, dec]}, {"op": "prove", "wasm": path, "zkey": path,
// "input": {...}}, {"op": "witness", "wasm": path, "input": {...}}, {"op": "verify", "vkey": {...}, "publicSignals": [...], "proof": {...}}.
// Answers: {"ok": true, ...} or {"ok": false, "error": "..."}.
// The cryptography is @noble/curves' (Poseidon) and snarkjs's (Groth16 witness and proof).
import { createInterface } from 'node:readline';
import { permute, hash2, Fr } from './poseidon.mjs';

function element(text) {
  if (typeof text !== 'string' || !/^(0|[1-9][0-9]*)$/.test(text)) throw new Error('not a decimal field element');
  const value = BigInt(text);
  if (value >= Fr.ORDER) throw new Error('not below the field modulus');
  return value;
}

let snarkjs = null;
async function prove(request) {
  if (snarkjs === null) snarkjs = await import('snarkjs');
  const { proof, publicSignals } = await snarkjs.groth16.fullProve(request.input, request.wasm, request.zkey);
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
