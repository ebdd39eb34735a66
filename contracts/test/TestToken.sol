// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice A plain ERC20 (18 decimals) that anyone can mint: the default token of local deployments and tests.
contract TestToken is ERC20 {
    constructor() ERC20("trustrl Test Token", "TRT") {}

    /// @notice Mint `amount` to `to` (no access control: test networks only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
