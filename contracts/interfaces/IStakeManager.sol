// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IStakeManager
/// @notice Stakes of trainers and validators in the deployment's ERC20.
///
/// A staker's tokens are either bonded or unbonding. Part of the bonded stake can be allocated to tasks;
/// a task's allocation is what a task may slash, and it is locked while the staker has joined that task
/// and the task is active (plus a settlement grace after its end, see {ITaskEscrow-lockedUntil}).
/// Free stake (bonded minus allocated) can be moved to unbonding and withdrawn after the unbonding period.
///
/// Every balance change emits an event, so `bonded`, `allocated`, `unbonding` of every staker and the
/// allocation per task can be rebuilt from events alone:
/// Staked(+bonded), UnstakeRequested(-bonded, +unbonding), Withdrawn(-unbonding),
/// Allocated(+allocation), Deallocated(-allocation), Slashed(-allocation, -bonded); and the slashed tokens
/// still held because the token refused the burn: BurnDeferred(+unburned), BurnFlushed(-unburned).
/// The contract holds `totalStake() + unburned()` tokens (plus any sent to it directly).
interface IStakeManager {
    /// @notice Tokens arrived from `staker` and were bonded.
    event Staked(address indexed staker, uint256 amount);

    /// @notice `amount` of free stake moved from bonded to unbonding; all unbonding stake of the staker is
    /// withdrawable from `releaseTime` on (each request restarts the period for the whole unbonding amount).
    event UnstakeRequested(address indexed staker, uint256 amount, uint256 releaseTime);

    /// @notice The staker's whole unbonding amount was paid out.
    event Withdrawn(address indexed staker, uint256 amount);

    /// @notice `amount` of the staker's free stake was allocated to task `taskId`.
    event Allocated(address indexed staker, uint256 indexed taskId, uint256 amount);

    /// @notice `amount` of the staker's allocation to `taskId` was released back to free stake.
    event Deallocated(address indexed staker, uint256 indexed taskId, uint256 amount);

    /// @notice `amount` was taken from the staker's allocation to `taskId` (and from its bonded stake) and
    /// sent to the burn address (unless a BurnDeferred of the same slash follows).
    event Slashed(address indexed staker, uint256 indexed taskId, uint256 amount);

    /// @notice `amount` of the slash just emitted as Slashed went to `to` (the AppealCourt), not to the burn
    /// address.
    event Seized(address indexed staker, uint256 indexed taskId, uint256 amount, address to);

    /// @notice The token refused the transfer of the slash of `amount` (just emitted as Slashed) to the burn
    /// address; the contract keeps it, and `unburned` is now the total kept, to be burned by {flushBurn}.
    event BurnDeferred(address indexed staker, uint256 indexed taskId, uint256 amount, uint256 unburned);

    /// @notice The whole unburned total, `amount`, was sent to the burn address.
    event BurnFlushed(uint256 amount);

    /// @notice An amount of zero was given where a positive one is required.
    error ZeroAmount();

    /// @notice The call needs `needed` of free stake (bonded minus allocated) and the staker has `free`.
    error InsufficientFreeStake(address staker, uint256 free, uint256 needed);

    /// @notice The staker has `allocated` allocated to `taskId`, less than the `needed` amount.
    error InsufficientAllocation(address staker, uint256 taskId, uint256 allocated, uint256 needed);

    /// @notice The staker's allocation to `taskId` is locked until `lockedUntil`, the TaskEscrow's
    /// `lockedUntil(taskId, staker)`: type(uint256).max while the task is active or while the staker has
    /// something unsettled in it (a trainer's submissions: `unsettledOf`; a validator's rounds:
    /// `validatorUnsettledOf`), else the task's end plus the settlement grace.
    error AllocationLocked(address staker, uint256 taskId, uint256 lockedUntil);

    /// @notice The staker has nothing unbonding.
    error NothingToWithdraw(address staker);

    /// @notice The staker's unbonding stake is released at `releaseTime`, later than `timestamp`.
    error StillUnbonding(address staker, uint256 releaseTime, uint256 timestamp);

    /// @notice A seize would keep `kept`, more than the `slashed` it takes.
    error SeizeBeyondSlash(uint256 kept, uint256 slashed);

    /// @notice Only the deployment's slashers (its TaskEscrow, HoneypotRegistry and AppealCourt) may slash
    /// (and only the AppealCourt seize).
    error NotSlasher(address caller);

    /// @notice {flushBurn} was called with nothing unburned.
    error NothingToBurn();

    /// @notice The token still refuses to transfer the unburned `amount` to the burn address.
    error BurnRefused(uint256 amount);

    /// @notice A transfer in delivered `received` tokens instead of `expected` (a fee-on-transfer or
    /// otherwise non-standard token); such tokens are refused.
    error TokenTransferShortfall(uint256 expected, uint256 received);

    /// @notice Pull `amount` tokens from the caller (approve first) and bond them.
    /// @dev Reverts with {TokenTransferShortfall} unless exactly `amount` arrives.
    function stake(uint256 amount) external;

    /// @notice Move `amount` of free stake to unbonding; it can be withdrawn after the unbonding period.
    function requestUnstake(uint256 amount) external;

    /// @notice Pay out the caller's whole unbonding stake once its release time has passed.
    /// @return amount The amount paid.
    function withdraw() external returns (uint256 amount);

    /// @notice Allocate `amount` of the caller's free stake to task `taskId` (also while locked).
    function allocate(uint256 taskId, uint256 amount) external;

    /// @notice Release `amount` of the caller's allocation to `taskId`; reverts with {AllocationLocked}
    /// while the task holds the lock.
    function deallocate(uint256 taskId, uint256 amount) external;

    /// @notice Slash up to `amount` of `staker`'s allocation to `taskId` to the burn address.
    /// @dev Only the TaskEscrow, the HoneypotRegistry and the AppealCourt. Never reverts for lack of stake: it slashes `min(amount, allocation)`; nor
    /// because the token refuses the burn: the amount is then deducted all the same and kept as unburned
    /// (BurnDeferred) until {flushBurn} succeeds.
    /// @return slashed The amount actually slashed.
    function slash(address staker, uint256 taskId, uint256 amount) external returns (uint256 slashed);

    /// @notice A slash of which `kept` goes to the caller and the rest to the burn address (Slashed, then
    /// Seized with `kept`, possibly 0, then BurnDeferred if the token refuses the burn).
    /// @dev Only the AppealCourt, which pays the wronged trainers and the appellants out of `kept`. Takes
    /// `min(amount, allocation)`; `kept` must not exceed it (`SeizeBeyondSlash`).
    /// @return slashed The amount actually taken.
    function seize(address staker, uint256 taskId, uint256 amount, uint256 kept) external returns (uint256 slashed);

    /// @notice Send every slashed token kept because the token refused the burn to the burn address
    /// (permissionless). Reverts with {NothingToBurn} when there is none and {BurnRefused} when the token
    /// still refuses.
    /// @return amount The amount burned.
    function flushBurn() external returns (uint256 amount);

    /// @notice The staker's bonded stake (allocated included), allocated total, unbonding amount and the
    /// time from which the unbonding amount can be withdrawn.
    function stakeOf(address staker)
        external
        view
        returns (uint256 bonded, uint256 allocated, uint256 unbonding, uint256 releaseTime);

    /// @notice The staker's free stake: bonded minus allocated.
    function freeStakeOf(address staker) external view returns (uint256);

    /// @notice The staker's allocation to `taskId`.
    function allocationOf(address staker, uint256 taskId) external view returns (uint256);

    /// @notice Everything the contract owes stakers: the sum of all bonded and unbonding stakes. Plus
    /// {unburned}, equals the contract's token balance unless someone sent tokens to it directly.
    function totalStake() external view returns (uint256);

    /// @notice Slashed tokens the contract still holds because the token refused their transfer to the burn
    /// address (owed to nobody; {flushBurn} retries).
    function unburned() external view returns (uint256);

    /// @notice The deployment's ERC20.
    function token() external view returns (address);

    /// @notice The TaskEscrow allowed to slash and consulted for locks.
    function taskEscrow() external view returns (address);

    /// @notice The HoneypotRegistry, the second contract allowed to slash (zero: none).
    function honeypotRegistry() external view returns (address);

    /// @notice The AppealCourt, the third contract allowed to slash, and the only one to seize (zero: none).
    function appealCourt() external view returns (address);

    /// @notice Seconds between a stake's unstake request and its withdrawal.
    function unbondingPeriod() external view returns (uint256);

    /// @notice Where slashed tokens go: 0x000000000000000000000000000000000000dEaD.
    // slither-disable-next-line naming-convention a constant's getter, named as the constant (as in OpenZeppelin)
    function BURN_ADDRESS() external view returns (address);
}
