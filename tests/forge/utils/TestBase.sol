// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Vm} from "./Vm.sol";

/// @title TestBase
/// @notice What the project's forge tests share: the cheatcodes, `bound` for fuzzed inputs, and the
/// target lists that `forge test` reads from an invariant test (the names and types of forge-std's
/// StdInvariant, which forge looks up by signature).
abstract contract TestBase {
    /// @notice A contract and the functions of it that an invariant campaign calls.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    address[] private _targetContracts;
    FuzzSelector[] private _targetSelectors;

    /// @notice `x` mapped into [min, max] (inclusive), uniformly for inputs spread over uint256, and kept
    /// as is when already inside, so that the fuzzer's edge values (0, 1, max) stay edges.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        // size + 1 overflows only for the full range, where every x is inside.
        return min + x % (size + 1);
    }

    /// @notice Let the invariant campaign call `selectors` of `target` (and nothing else of it).
    function targetSelectors(address target, bytes4[] memory selectors) internal {
        _targetContracts.push(target);
        _targetSelectors.push(FuzzSelector(target, selectors));
    }

    /// @notice Read by `forge test`: the contracts an invariant campaign calls.
    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }

    /// @notice Read by `forge test`: the functions of each target an invariant campaign calls.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetSelectors;
    }
}
