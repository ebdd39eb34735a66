// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FeeToken
/// @notice An ERC20 that burns `feeBps` of every transfer (fee-on-transfer): the recipient gets less than
/// the amount sent. Contracts that require deposits in full must refuse it.
contract FeeToken is ERC20 {
    uint256 private immutable _feeBps;

    constructor(uint256 feeBps_) ERC20("Fee Token", "FEE") {
        _feeBps = feeBps_;
    }

    /// @notice Mint `amount` to `to` (no fee, no access control).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice The fee in basis points taken from every transfer.
    function feeBps() external view returns (uint256) {
        return _feeBps;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = value * _feeBps / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
