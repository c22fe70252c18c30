// Pieces shared by the statements: the commitment opening and the request binding.
pragma circom 2.1.0;

include "poseidon.circom";
include "../node/node_modules/circomlib/circuits/bitify.circom";

// commitment == Poseidon(value, salt), with value < 2^64 and salt < 2^248 (range-checked).
template CommitmentOpening() {
    signal input value;
    signal input salt;
    signal input commitment;
    component valueBits = Num2Bits(64);
    valueBits.in <== value;
    component saltBits = Num2Bits(248);
    saltBits.in <== salt;
    component h = Hash2();
    h.a <== value;
    h.b <== salt;
    commitment === h.out;
}

// Makes the public binding (nonce, audience, request hash) part of a constraint, so the proof
// commits to it explicitly.
template Binding() {
    signal input binding;
    signal square;
    square <== binding * binding;
}
