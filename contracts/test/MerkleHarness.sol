// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @notice Test-only: the normative encodings of docs/encodings.md computed on chain, so the shared
/// vectors in tests/vectors/encodings.json are checked against Solidity as well as Python.
contract MerkleHarness {
    error EmptyTree();

    function rolloutLeaf(
        uint32 step,
        uint32 promptIdx,
        uint32 g,
        bytes32 promptHash,
        bytes32 completionHash,
        int64 rewardMicros,
        bytes32 proofsHash
    ) external pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(abi.encode(step, promptIdx, g, promptHash, completionHash, rewardMicros, proofsHash))
            )
        );
    }

    function stateLeaf(uint32 index, bytes32 stateHash) external pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(index, stateHash))));
    }

    /// @notice keccak256 of the token ids as 4-byte big-endian values (prompt and completion hashes).
    function tokenHash(uint32[] calldata tokens) external pure returns (bytes32) {
        bytes memory packed = new bytes(0);
        for (uint256 i = 0; i < tokens.length; ++i) {
            packed = bytes.concat(packed, bytes4(tokens[i]));
        }
        return keccak256(packed);
    }

    /// @notice keccak256 of the concatenated parts (the proofs hash).
    function concatHash(bytes[] calldata parts) external pure returns (bytes32) {
        bytes memory packed = new bytes(0);
        for (uint256 i = 0; i < parts.length; ++i) {
            packed = bytes.concat(packed, parts[i]);
        }
        return keccak256(packed);
    }

    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleProof.verify(proof, root, leaf);
    }

    function processProof(bytes32[] calldata proof, bytes32 leaf) external pure returns (bytes32) {
        return MerkleProof.processProof(proof, leaf);
    }

    /// @notice The root of the tree shape of docs/encodings.md, built level by level: pairs hashed
    /// with OpenZeppelin's commutative keccak, an unpaired last node moved up unchanged.
    function buildRoot(bytes32[] calldata leaves) external pure returns (bytes32) {
        uint256 n = leaves.length;
        if (n == 0) revert EmptyTree();
        bytes32[] memory level = leaves;
        while (n > 1) {
            uint256 half = n / 2;
            for (uint256 i = 0; i < half; ++i) {
                level[i] = Hashes.commutativeKeccak256(level[2 * i], level[2 * i + 1]);
            }
            if (n % 2 == 1) {
                level[half] = level[n - 1];
                n = half + 1;
            } else {
                n = half;
            }
        }
        return level[0];
    }
}
