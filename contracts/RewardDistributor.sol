// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IRewardDistributor} from "./interfaces/IRewardDistributor.sol";

/// @title RewardDistributor
/// @notice The vault of task rewards: escrow and credits as totals, claims as pull payments (one account's
/// own, or a batch paid out to their owners by anyone).
contract RewardDistributor is IRewardDistributor, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @dev Both totals share one slot so that a credit or a claim writes it once.
    struct Totals {
        uint128 escrowed;
        uint128 credits;
    }

    /// @dev `opened`: the slot was written before the account's first credit (by {open}, when it created or
    /// joined a task) and stays nonzero after a claim, so that crediting and claiming rewrite a nonzero slot
    /// (~5k gas) instead of filling an empty one (~22k): a round's settlement does not pay the first credit
    /// of each of its accounts. A credit fits in 128 bits because the credits total does.
    struct Account {
        uint128 credit;
        bool opened;
    }

    IERC20 private immutable _token;
    address private immutable _escrow;

    mapping(address account => Account) private _accounts;
    Totals private _totals;

    /// @param token_ the deployment's ERC20
    /// @param escrow_ the TaskEscrow (its address may be computed before it is deployed)
    constructor(IERC20 token_, address escrow_) {
        _token = token_;
        // slither-disable-next-line missing-zero-check computed from the deployer's nonce, checked by deploy_protocol
        _escrow = escrow_;
    }

    modifier onlyEscrow() {
        if (msg.sender != _escrow) revert OnlyTaskEscrow(msg.sender);
        _;
    }

    /// @inheritdoc IRewardDistributor
    function recordDeposit(uint256 taskId, address from, uint256 amount) external onlyEscrow {
        Totals memory totals = _totals;
        // escrowed + credits never grows except here, so bounding it here keeps credits and claims in range.
        uint128 held = SafeCast.toUint128(uint256(totals.escrowed) + totals.credits + amount);
        _totals.escrowed = held - totals.credits;
        _open(from);
        emit Deposited(taskId, from, amount);
    }

    /// @inheritdoc IRewardDistributor
    function open(address account) external onlyEscrow {
        _open(account);
    }

    /// @inheritdoc IRewardDistributor
    function credit(address account, uint256 amount, uint256 taskId, uint256 round, CreditReason reason)
        external
        onlyEscrow
    {
        Totals memory totals = _totals;
        if (amount > totals.escrowed) revert CreditExceedsEscrow(amount, totals.escrowed);
        // `amount <= escrowed`, and escrowed + credits < 2^128 (see recordDeposit).
        unchecked {
            totals.escrowed -= uint128(amount);
            totals.credits += uint128(amount);
            _accounts[account].credit += uint128(amount);
        }
        _totals = totals;
        emit Credited(account, taskId, round, amount, reason);
    }

    /// @inheritdoc IRewardDistributor
    function claim() external nonReentrant returns (uint256 amount) {
        Account storage account = _accounts[msg.sender];
        amount = account.credit;
        if (amount == 0) revert NothingToClaim(msg.sender);
        account.credit = 0;
        // Every account's credit is part of the credits total.
        unchecked {
            _totals.credits -= uint128(amount);
        }
        emit Claimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IRewardDistributor
    function claimFor(address[] calldata accounts) external nonReentrant returns (uint256 total) {
        uint256 n = accounts.length;
        uint256[] memory amounts = new uint256[](n);
        // Each amount is part of the credits total (< 2^128): no overflow.
        unchecked {
            for (uint256 i = 0; i < n; ++i) {
                Account storage account = _accounts[accounts[i]];
                uint256 amount = account.credit;
                if (amount == 0) continue; // none, or paid earlier in this batch
                account.credit = 0;
                amounts[i] = amount;
                total += amount;
                emit Claimed(accounts[i], amount);
            }
            if (total == 0) revert NothingToClaimFor(n);
            _totals.credits -= uint128(total);
        }
        for (uint256 i = 0; i < n; ++i) {
            if (amounts[i] != 0) _token.safeTransfer(accounts[i], amounts[i]);
        }
    }

    /// @inheritdoc IRewardDistributor
    function creditOf(address account) external view returns (uint256) {
        return _accounts[account].credit;
    }

    /// @inheritdoc IRewardDistributor
    function isOpen(address account) external view returns (bool) {
        return _accounts[account].opened;
    }

    /// @inheritdoc IRewardDistributor
    function totalEscrowed() external view returns (uint256) {
        return _totals.escrowed;
    }

    /// @inheritdoc IRewardDistributor
    function totalCredits() external view returns (uint256) {
        return _totals.credits;
    }

    /// @inheritdoc IRewardDistributor
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IRewardDistributor
    function taskEscrow() external view returns (address) {
        return _escrow;
    }

    function _open(address account) private {
        Account storage a = _accounts[account];
        if (!a.opened) a.opened = true;
    }
}
