// community_score_at_least: the committed community score (micro-units, issue 19) is >= threshold.  Public: commitment, threshold, binding.
pragma circom 2.1.0;

include "common.circom";
include "../node/node_modules/circomlib/circuits/comparators.circom";

template CommunityScoreAtLeast() {
    signal input commitment;
    signal input threshold;
    signal input binding;
    signal input value;
    signal input salt;

    component opening = CommitmentOpening();
    opening.value <== value;
    opening.salt <== salt;
    opening.commitment <== commitment;
    component thresholdBits = Num2Bits(64);
    thresholdBits.in <== threshold;
    component ge = GreaterEqThan(64);
    ge.in[0] <== value;
    ge.in[1] <== threshold;
    ge.out === 1;
    component bound = Binding();
    bound.binding <== binding;
}

component main {public [commitment, threshold, binding]} = CommunityScoreAtLeast();
