// income_bracket_at_most: the committed value is <= limit.  Public: commitment, limit, binding.
pragma circom 2.1.0;

include "common.circom";
include "../node/node_modules/circomlib/circuits/comparators.circom";

template IncomeBracketAtMost() {
    signal input commitment;
    signal input limit;
    signal input binding;
    signal input value;
    signal input salt;

    component opening = CommitmentOpening();
    opening.value <== value;
    opening.salt <== salt;
    opening.commitment <== commitment;
    component limitBits = Num2Bits(64);
    limitBits.in <== limit;
    component le = LessEqThan(64);
    le.in[0] <== value;
    le.in[1] <== limit;
    le.out === 1;
    component bound = Binding();
    bound.binding <== binding;
}

component main {public [commitment, limit, binding]} = IncomeBracketAtMost();
