// The Poseidon permutation poseidonperm_x5_255_3 (BLS12-381 scalar field, t = 3, x^5,
// R_F = 8, R_P = 57) and the two-to-one hash used for commitments and Merkle nodes.
// Constants: poseidon_constants.circom, generated from @noble/curves (never typed).
// Agreement with the native hash is tested (tests/unit/zk/test_circuits.py); circomlib's own
// Poseidon is not used because its constants are for BN254 only.
pragma circom 2.1.0;

include "poseidon_constants.circom";

// x^5 in three multiplications.
template Pow5() {
    signal input in;
    signal output out;
    signal in2;
    signal in4;
    in2 <== in * in;
    in4 <== in2 * in2;
    out <== in4 * in;
}

template PoseidonPermutation() {
    var T = 3;
    var RF = 8;
    var RP = 57;
    signal input in[T];
    signal output out[T];

    var C[(RF + RP) * T] = POSEIDON_RC();
    var M[T][T] = POSEIDON_MDS();
    component full[RF][T];
    component partial[RP];

    var state[T];
    for (var i = 0; i < T; i++) {
        state[i] = in[i];
    }
    var f = 0;
    for (var r = 0; r < RF + RP; r++) {
        var isFull = r < RF / 2 || r >= RF / 2 + RP;
        // Round constants, then the S-box: every lane in a full round, lane 0 in a partial one.
        for (var i = 0; i < T; i++) {
            state[i] = state[i] + C[r * T + i];
        }
        if (isFull) {
            for (var i = 0; i < T; i++) {
                full[f][i] = Pow5();
                full[f][i].in <== state[i];
                state[i] = full[f][i].out;
            }
            f++;
        } else {
            partial[r - RF / 2] = Pow5();
            partial[r - RF / 2].in <== state[0];
            state[0] = partial[r - RF / 2].out;
        }
        // The MDS matrix: new[i] = sum_j M[i][j] * state[j].
        var mixed[T];
        for (var i = 0; i < T; i++) {
            mixed[i] = 0;
            for (var j = 0; j < T; j++) {
                mixed[i] += M[i][j] * state[j];
            }
        }
        for (var i = 0; i < T; i++) {
            state[i] = mixed[i];
        }
    }
    for (var i = 0; i < T; i++) {
        out[i] <== state[i];
    }
}

// Poseidon(a, b): capacity lane 0 set to 0, inputs in lanes 1 and 2, digest lane 0.
template Hash2() {
    signal input a;
    signal input b;
    signal output out;
    component p = PoseidonPermutation();
    p.in[0] <== 0;
    p.in[1] <== a;
    p.in[2] <== b;
    out <== p.out[0];
}
