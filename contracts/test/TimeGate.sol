// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice Test-only contract for the chain client: calls that revert only because of the block they are
/// mined in (a deadline against block.timestamp, a last block against block.number), so that replaying
/// them on the parent block would succeed.
contract TimeGate {
    error Expired(uint256 deadline, uint256 timestamp);
    error TooLate(uint256 lastBlock, uint256 blockNumber);

    uint256 public hits;

    /// @notice Succeeds while block.timestamp <= deadline.
    function beforeTime(uint256 deadline) external {
        if (block.timestamp > deadline) revert Expired(deadline, block.timestamp);
        hits += 1;
    }

    /// @notice Succeeds while block.number <= lastBlock.
    function beforeBlock(uint256 lastBlock) external {
        if (block.number > lastBlock) revert TooLate(lastBlock, block.number);
        hits += 1;
    }
}
