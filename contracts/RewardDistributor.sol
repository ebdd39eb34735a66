// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IRewardDistributor} from "./interfaces/IRewardDistributor.sol";

/// @title RewardDistributor
/// @notice The vault of task rewards: escrow and credits as totals, claims as pull payments.
contract RewardDistributor is IRewardDistributor, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @dev Both totals share one slot so that a credit or a claim writes it once.
    struct Totals {
        uint128 escrowed;
        uint128 credits;
    }

    IERC20 private immutable _token;
    address private immutable _escrow;

    mapping(address account => uint256 amount) private _credits;
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
        emit Deposited(taskId, from, amount);
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
            _credits[account] += amount;
        }
        _totals = totals;
        emit Credited(account, taskId, round, amount, reason);
    }

    /// @inheritdoc IRewardDistributor
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _credits[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        _credits[msg.sender] = 0;
        // Every account's credit is part of the credits total.
        unchecked {
            _totals.credits -= uint128(amount);
        }
        emit Claimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IRewardDistributor
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
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
}
