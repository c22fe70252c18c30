// Poseidon over the BLS12-381 scalar field, instance poseidonperm_x5_255_3 of the Poseidon
// paper's reference (x^5 S-box, t = 3, R_F = 8, R_P = 57, 128-bit security).
//
// The cryptography is @noble/curves' (abstract/poseidon.js): grainGenConstants derives the
// round constants and the MDS matrix with the paper's Grain LFSR procedure, and poseidon()
// is the permutation.  Nothing here computes a round.
import { grainGenConstants, poseidon } from '@noble/curves/abstract/poseidon.js';
import { bls12_381 } from '@noble/curves/bls12-381.js';

export const Fr = bls12_381.fields.Fr;
export const PARAMETERS = Object.freeze({
  name: 'poseidonperm_x5_255_3',
  field: 'BLS12-381 scalar field',
  modulus: Fr.ORDER,
  t: 3,
  alpha: 5,
  roundsFull: 8,
  roundsPartial: 57,
  securityBits: 128,
});

const opts = {
  Fp: Fr,
  t: PARAMETERS.t,
  roundsFull: PARAMETERS.roundsFull,
  roundsPartial: PARAMETERS.roundsPartial,
  sboxPower: PARAMETERS.alpha,
};
export const CONSTANTS = grainGenConstants(opts);
export const permute = poseidon({ ...opts, ...CONSTANTS });

// The two-to-one hash used for commitments and Merkle nodes: capacity lane 0 holds 0, the
// inputs go in lanes 1 and 2, the digest is lane 0 of the permuted state (circomlib's
// convention, over this field).
export function hash2(a, b) {
  return permute([0n, a, b])[0];
}
