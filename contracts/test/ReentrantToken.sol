// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken
/// @notice An ERC20 with a hook: once armed, the next transfer (not mint or burn) calls `target` with
/// `data` before moving the tokens, and bubbles up a revert of that call. It models a token (ERC777-like)
/// that hands control to someone in the middle of a transfer.
contract ReentrantToken is ERC20 {
    address private _target;
    bytes private _data;

    /// @notice The hook called `target`; it returned `result`.
    event HookCalled(address indexed target, bytes result);

    constructor() ERC20("Reentrant Token", "REN") {}

    /// @notice Mint `amount` to `to` (no hook, no access control).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arm the hook: the next transfer calls `target` with `data` (once).
    function arm(address target, bytes calldata data) external {
        _target = target;
        _data = data;
    }

    /// @notice Whether the hook is armed.
    function armed() external view returns (bool) {
        return _target != address(0);
    }

    function _update(address from, address to, uint256 value) internal override {
        address target = _target;
        if (target != address(0) && from != address(0) && to != address(0)) {
            bytes memory data = _data;
            delete _target;
            delete _data;
            (bool ok, bytes memory result) = target.call(data);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(result, 0x20), mload(result))
                }
            }
            emit HookCalled(target, result);
        }
        super._update(from, to, value);
    }
}
