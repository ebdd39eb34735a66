// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title SixDecimalToken
/// @notice Test-only: a mintable ERC20 with 6 decimals (as USDC): amounts a person types in tokens must be
/// scaled by 10^6, not 10^18, before they reach the contracts.
contract SixDecimalToken is ERC20 {
    constructor() ERC20("Six Decimal Token", "SIX") {}

    /// @notice 6, as USDC and USDT.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint `amount` to `to` (no access control: test networks only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
