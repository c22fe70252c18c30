// member_of_group: the committed group id (non-zero) is a leaf of the verifier's Poseidon Merkle
// tree of depth 6 (64 leaves; empty leaves are 0; node = Poseidon(left, right)).
// Public: commitment, root, binding.  Private: the id, the salt, the path.
pragma circom 2.1.0;

include "common.circom";

template MemberOfGroup(DEPTH) {
    signal input commitment;
    signal input root;
    signal input binding;
    signal input value;
    signal input salt;
    signal input path_elements[DEPTH];
    signal input path_indices[DEPTH];

    component opening = CommitmentOpening();
    opening.value <== value;
    opening.salt <== salt;
    opening.commitment <== commitment;
    // A group id is never 0, the value of an empty leaf.
    signal inverse;
    inverse <-- value != 0 ? 1 / value : 0;
    inverse * value === 1;

    component nodes[DEPTH];
    signal left[DEPTH];
    signal right[DEPTH];
    signal current[DEPTH + 1];
    current[0] <== value;
    for (var i = 0; i < DEPTH; i++) {
        path_indices[i] * (1 - path_indices[i]) === 0;
        // index 0: current is the left child; 1: the right one.
        left[i] <== current[i] + path_indices[i] * (path_elements[i] - current[i]);
        right[i] <== path_elements[i] + current[i] - left[i];
        nodes[i] = Hash2();
        nodes[i].a <== left[i];
        nodes[i].b <== right[i];
        current[i + 1] <== nodes[i].out;
    }
    root === current[DEPTH];
    component bound = Binding();
    bound.binding <== binding;
}

component main {public [commitment, root, binding]} = MemberOfGroup(6);
