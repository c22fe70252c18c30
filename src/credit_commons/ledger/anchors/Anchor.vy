# pragma version ==0.4.3
# pragma evm-version cancun
"""
@title Credit Commons checkpoint anchor
@notice Publishes transparency-log checkpoints (origin, tree size, root hash) as events.
        Only the deployer may anchor; nothing is stored, as logs are all a verifier reads.
"""

# The root is indexed so anyone can look an anchor up by root hash; the origin stays in the
# data, because an indexed string would be reduced to its keccak hash.
event Anchored:
    origin: String[255]
    size: uint256
    root: indexed(bytes32)

owner: public(immutable(address))


@deploy
def __init__():
    owner = msg.sender


@external
def anchor(origin: String[255], size: uint256, root: bytes32):
    assert msg.sender == owner, "not owner"
    log Anchored(origin=origin, size=size, root=root)
