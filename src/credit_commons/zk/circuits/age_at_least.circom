// age_at_least: the committed birth day (a proleptic Gregorian ordinal, Python's
// date.toordinal()) is at least min_age_days before the verifier's day, allowing max_drift
// days: birth_day + min_age_days <= verifier_day + max_drift.
// Public: commitment, verifier_day, min_age_days, max_drift, binding.  All values < 2^64, so the
// sums (< 2^65) compare exactly with 66-bit comparators.
pragma circom 2.1.0;

include "common.circom";
include "../node/node_modules/circomlib/circuits/comparators.circom";

template AgeAtLeast() {
    signal input commitment;
    signal input verifier_day;
    signal input min_age_days;
    signal input max_drift;
    signal input binding;
    signal input value;
    signal input salt;

    component opening = CommitmentOpening();
    opening.value <== value;
    opening.salt <== salt;
    opening.commitment <== commitment;
    component dayBits = Num2Bits(64);
    dayBits.in <== verifier_day;
    component ageBits = Num2Bits(64);
    ageBits.in <== min_age_days;
    component driftBits = Num2Bits(64);
    driftBits.in <== max_drift;
    component le = LessEqThan(66);
    le.in[0] <== value + min_age_days;
    le.in[1] <== verifier_day + max_drift;
    le.out === 1;
    component bound = Binding();
    bound.binding <== binding;
}

component main {public [commitment, verifier_day, min_age_days, max_drift, binding]} = AgeAtLeast();
