// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title AdversarialActor
/// @notice Test-only: a contract account that makes whatever call it is told to (stake, claim, withdraw,
/// createTask...) and bubbles up any revert unchanged. Armed as a ReentrantToken's hook target, it makes a
/// second call of its own while a transfer to or from it is in progress.
contract AdversarialActor {
    /// @notice Call `target` with `data` from this contract; a revert is passed on with its data.
    function execute(address target, bytes calldata data) external returns (bytes memory result) {
        bool ok;
        (ok, result) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }
}
