// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title AdversarialBlacklistToken
/// @notice Test-only: an ERC20 with a blacklist, like USDC's or USDT's: every transfer from or to a listed
/// account reverts. Listing the burn address models a token that refuses transfers to it.
contract AdversarialBlacklistToken is ERC20 {
    mapping(address account => bool) private _listed;

    /// @notice `account` was put on (`listed`) or taken off the blacklist.
    event BlacklistSet(address indexed account, bool listed);

    /// @notice A transfer from or to `account`, which is blacklisted.
    error AccountBlacklisted(address account);

    constructor() ERC20("Blacklist Token", "BLK") {}

    /// @notice Mint `amount` to `to` (no access control).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Put `account` on the blacklist or take it off (no access control).
    function setBlacklisted(address account, bool listed) external {
        _listed[account] = listed;
        emit BlacklistSet(account, listed);
    }

    /// @notice Whether `account` is blacklisted.
    function blacklisted(address account) external view returns (bool) {
        return _listed[account];
    }

    function _update(address from, address to, uint256 value) internal override {
        if (_listed[from]) revert AccountBlacklisted(from);
        if (_listed[to]) revert AccountBlacklisted(to);
        super._update(from, to, value);
    }
}
