// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title BurnBlockToken
/// @notice An ERC20 that refuses transfers to 0x000000000000000000000000000000000000dEaD (as a token with a
/// blocklist or a burn guard may), switchable with `setBlockBurn`; `mint(to, amount)` by anyone.
contract BurnBlockToken is ERC20 {
    address private constant _BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    /// @notice Whether transfers to the burn address are refused (initially true).
    bool public blockBurn = true;

    /// @notice A transfer to the burn address was refused.
    error BurnAddressBlocked();

    constructor() ERC20("Burn Block Token", "BBT") {}

    /// @notice Mint `amount` to `to` (test token: anyone may).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Refuse (true) or allow (false) transfers to the burn address.
    function setBlockBurn(bool blocked) external {
        blockBurn = blocked;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (blockBurn && to == _BURN_ADDRESS) revert BurnAddressBlocked();
        super._update(from, to, value);
    }
}
