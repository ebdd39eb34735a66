// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {ITaskEscrow} from "./interfaces/ITaskEscrow.sol";

/// @title StakeManager
/// @notice Bonded, allocated and unbonding stake; slashing to the burn address, only by the TaskEscrow, the
/// HoneypotRegistry and the AppealCourt (the deployment's three slashers, all fixed at construction); the
/// AppealCourt alone may also {seize} a slash (the tokens go to it, to pay the trainer an appeal found
/// wronged and the appellant).
/// A slash never reverts because of the token: a burn the token refuses is kept as `unburned` and retried
/// by anyone through {flushBurn}.
contract StakeManager is IStakeManager, ReentrancyGuardTransient {
    // slither-disable-start timestamp
    // (the unbonding period and the allocation lock end at a block.timestamp by design: a proposer's seconds
    // of skew matter nothing against periods of hours)
    using SafeERC20 for IERC20;

    /// @inheritdoc IStakeManager
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    /// @param bonded staked and not unbonding (allocated included)
    /// @param allocated sum of the staker's allocations over all tasks
    struct Bond {
        uint128 bonded;
        uint128 allocated;
    }

    /// @param amount tokens waiting for the end of the unbonding period
    /// @param releaseTime when they can be withdrawn
    struct Unbonding {
        uint128 amount;
        uint64 releaseTime;
    }

    IERC20 private immutable _token;
    ITaskEscrow private immutable _escrow;
    address private immutable _honeypots;
    address private immutable _court;
    uint256 private immutable _unbondingPeriod;

    mapping(address staker => Bond) private _bonds;
    mapping(address staker => Unbonding) private _unbondings;
    mapping(address staker => mapping(uint256 taskId => uint256 amount)) private _allocations;
    uint256 private _totalStake;
    uint256 private _unburned;

    /// @param token_ the deployment's ERC20
    /// @param escrow_ the TaskEscrow (its address may be computed before it is deployed)
    /// @param honeypots_ the HoneypotRegistry, the second slasher (its address may be computed before it is
    /// deployed; zero: none)
    /// @param court_ the AppealCourt, the third slasher (likewise; zero: none)
    /// @param unbondingPeriod_ seconds between an unstake request and the withdrawal
    constructor(IERC20 token_, ITaskEscrow escrow_, address honeypots_, address court_, uint256 unbondingPeriod_) {
        _token = token_;
        _escrow = escrow_;
        // slither-disable-next-line missing-zero-check zero is "no second slasher"; deploy_protocol checks the wiring
        _honeypots = honeypots_;
        // slither-disable-next-line missing-zero-check zero is "no appeals"; deploy_protocol checks the wiring
        _court = court_;
        _unbondingPeriod = unbondingPeriod_;
    }

    modifier onlySlasher() {
        if (msg.sender != address(_escrow) && msg.sender != _honeypots && msg.sender != _court) {
            revert NotSlasher(msg.sender);
        }
        _;
    }

    /// @inheritdoc IStakeManager
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 before = _token.balanceOf(address(this));
        _token.safeTransferFrom(msg.sender, address(this), amount);
        // Same form as TaskEscrow.createTask: a balance that fell during the transfer is a shortfall.
        uint256 afterwards = _token.balanceOf(address(this));
        if (afterwards != before + amount) {
            revert TokenTransferShortfall(amount, afterwards > before ? afterwards - before : 0);
        }
        _bonds[msg.sender].bonded += SafeCast.toUint128(amount);
        _totalStake += amount;
        emit Staked(msg.sender, amount);
    }

    /// @inheritdoc IStakeManager
    function requestUnstake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Bond storage bond = _bonds[msg.sender];
        uint256 free = bond.bonded - bond.allocated;
        if (amount > free) revert InsufficientFreeStake(msg.sender, free, amount);
        // `amount <= free <= bonded`.
        unchecked {
            bond.bonded -= uint128(amount);
        }
        Unbonding storage unbonding = _unbondings[msg.sender];
        unbonding.amount += uint128(amount);
        uint256 releaseTime = block.timestamp + _unbondingPeriod;
        unbonding.releaseTime = uint64(releaseTime);
        emit UnstakeRequested(msg.sender, amount, releaseTime);
    }

    /// @inheritdoc IStakeManager
    function withdraw() external nonReentrant returns (uint256 amount) {
        Unbonding memory unbonding = _unbondings[msg.sender];
        amount = unbonding.amount;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < unbonding.releaseTime) {
            revert StillUnbonding(msg.sender, unbonding.releaseTime, block.timestamp);
        }
        delete _unbondings[msg.sender];
        _totalStake -= amount;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IStakeManager
    function allocate(uint256 taskId, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Bond storage bond = _bonds[msg.sender];
        uint256 free = bond.bonded - bond.allocated;
        if (amount > free) revert InsufficientFreeStake(msg.sender, free, amount);
        // `amount <= free`, so the new total allocation stays <= bonded < 2^128.
        unchecked {
            bond.allocated += uint128(amount);
            _allocations[msg.sender][taskId] += amount;
        }
        emit Allocated(msg.sender, taskId, amount);
    }

    /// @inheritdoc IStakeManager
    function deallocate(uint256 taskId, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 allocation = _allocations[msg.sender][taskId];
        if (amount > allocation) revert InsufficientAllocation(msg.sender, taskId, allocation, amount);
        uint256 until = _escrow.lockedUntil(taskId, msg.sender);
        if (block.timestamp < until) revert AllocationLocked(msg.sender, taskId, until);
        // `amount <= allocation <= allocated`.
        unchecked {
            _allocations[msg.sender][taskId] = allocation - amount;
            _bonds[msg.sender].allocated -= uint128(amount);
        }
        emit Deallocated(msg.sender, taskId, amount);
    }

    /// @inheritdoc IStakeManager
    function slash(address staker, uint256 taskId, uint256 amount)
        external
        onlySlasher
        nonReentrant
        returns (uint256 slashed)
    {
        slashed = _take(staker, taskId, amount);
        if (slashed != 0) _burn(staker, taskId, slashed);
    }

    /// @inheritdoc IStakeManager
    function seize(address staker, uint256 taskId, uint256 amount, uint256 kept)
        external
        nonReentrant
        returns (uint256 slashed)
    {
        if (msg.sender != _court) revert NotSlasher(msg.sender);
        slashed = _take(staker, taskId, amount);
        if (kept > slashed) revert SeizeBeyondSlash(kept, slashed);
        if (slashed == 0) return 0;
        emit Seized(staker, taskId, kept, msg.sender);
        if (kept != 0) _token.safeTransfer(msg.sender, kept);
        uint256 burn = slashed - kept;
        if (burn != 0) _burn(staker, taskId, burn);
    }

    /// @dev Takes min(`amount`, the allocation) of `staker`'s allocation to `taskId` out of its stake (the
    /// allocation, `allocated`, `bonded` and the total stake all fall by it) and emits {Slashed}; nothing
    /// when that is zero. The tokens stay here for the caller to burn or pay out.
    function _take(address staker, uint256 taskId, uint256 amount) private returns (uint256 taken) {
        uint256 allocation = _allocations[staker][taskId];
        taken = amount < allocation ? amount : allocation;
        if (taken == 0) return 0;
        // `taken <= allocation <= allocated <= bonded <= totalStake`.
        unchecked {
            _allocations[staker][taskId] = allocation - taken;
            Bond storage bond = _bonds[staker];
            bond.allocated -= uint128(taken);
            bond.bonded -= uint128(taken);
            _totalStake -= taken;
        }
        emit Slashed(staker, taskId, taken);
    }

    /// @dev Sends `amount` to the burn address; a token that refuses it (a blocklist, a burn guard) must not
    /// make the slash revert: the amount is then kept as `unburned` for {flushBurn} ({BurnDeferred}).
    function _burn(address staker, uint256 taskId, uint256 amount) private {
        if (!_token.trySafeTransfer(BURN_ADDRESS, amount)) {
            uint256 held = _unburned + amount;
            _unburned = held;
            emit BurnDeferred(staker, taskId, amount, held);
        }
    }

    /// @inheritdoc IStakeManager
    function flushBurn() external nonReentrant returns (uint256 amount) {
        amount = _unburned;
        if (amount == 0) revert NothingToBurn();
        _unburned = 0;
        emit BurnFlushed(amount);
        if (!_token.trySafeTransfer(BURN_ADDRESS, amount)) revert BurnRefused(amount);
    }

    /// @inheritdoc IStakeManager
    function stakeOf(address staker)
        external
        view
        returns (uint256 bonded, uint256 allocated, uint256 unbonding, uint256 releaseTime)
    {
        Bond memory bond = _bonds[staker];
        Unbonding memory u = _unbondings[staker];
        return (bond.bonded, bond.allocated, u.amount, u.releaseTime);
    }

    /// @inheritdoc IStakeManager
    function freeStakeOf(address staker) external view returns (uint256) {
        Bond memory bond = _bonds[staker];
        return bond.bonded - bond.allocated;
    }

    /// @inheritdoc IStakeManager
    function allocationOf(address staker, uint256 taskId) external view returns (uint256) {
        return _allocations[staker][taskId];
    }

    /// @inheritdoc IStakeManager
    function totalStake() external view returns (uint256) {
        return _totalStake;
    }

    /// @inheritdoc IStakeManager
    function unburned() external view returns (uint256) {
        return _unburned;
    }

    /// @inheritdoc IStakeManager
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IStakeManager
    function taskEscrow() external view returns (address) {
        return address(_escrow);
    }

    /// @inheritdoc IStakeManager
    function honeypotRegistry() external view returns (address) {
        return _honeypots;
    }

    /// @inheritdoc IStakeManager
    function appealCourt() external view returns (address) {
        return _court;
    }

    /// @inheritdoc IStakeManager
    function unbondingPeriod() external view returns (uint256) {
        return _unbondingPeriod;
    }
    // slither-disable-end timestamp
}
