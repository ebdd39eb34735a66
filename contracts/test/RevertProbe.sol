// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice Test-only contract for the chain client: custom errors with values, Error(string),
/// Panic(uint256), plain state changes and events to page through.
contract RevertProbe {
    error TooSmall(uint256 given, uint256 minimum);
    error NotAllowed(address caller, bytes32 reason);
    error Bare();

    event Poked(address indexed caller, uint256 indexed seq, uint256 value);

    uint256 private _counter;

    function counter() external view returns (uint256) {
        return _counter;
    }

    /// @notice Increments the counter by `value`; reverts with TooSmall below 1.
    function poke(uint256 value) external {
        if (value < 1) revert TooSmall(value, 1);
        _counter += value;
        emit Poked(msg.sender, _counter, value);
    }

    /// @notice Emits `count` events in one transaction.
    function pokeMany(uint256 count) external {
        for (uint256 i = 0; i < count; ++i) {
            _counter += 1;
            emit Poked(msg.sender, _counter, i);
        }
    }

    function failCustom(uint256 given) external pure {
        revert TooSmall(given, given + 1);
    }

    function failAddress(bytes32 reason) external view {
        revert NotAllowed(msg.sender, reason);
    }

    function failBare() external pure {
        revert Bare();
    }

    function failString(string calldata message) external pure {
        require(false, message);
    }

    function failPanic(uint256 divisor) external pure returns (uint256) {
        return 1 / divisor;
    }

    function failRaw(bytes calldata data) external pure {
        assembly {
            let ptr := mload(0x40)
            calldatacopy(ptr, data.offset, data.length)
            revert(ptr, data.length)
        }
    }

    /// @notice Succeeds on estimate (no revert) only when `allow` holds; used to revert in a mined tx.
    function failIfTimeBefore(uint256 timestamp) external {
        if (block.timestamp < timestamp) revert TooSmall(block.timestamp, timestamp);
        _counter += 1;
    }

    function timestampNow() external view returns (uint256) {
        return block.timestamp;
    }
}
