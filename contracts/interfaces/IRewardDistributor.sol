// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IRewardDistributor
/// @notice Holds every task's escrowed reward and every account's unclaimed credit; pays credits out on
/// `claim` (pull payment), or to their owners in batches on `claimFor` (anyone may send it: a keeper pays
/// a task's participants out in one transaction instead of one each).
///
/// The TaskEscrow decides: it records deposits (tokens it moved here from the initiator) and credits an
/// account from a task's escrow (a reward, or the refund of what remains to the initiator). The invariant
/// `token.balanceOf(this) == totalEscrowed() + totalCredits()` holds after every call (tokens sent here
/// directly only add to the left side). Deposited, Credited and Claimed rebuild both totals and every
/// account's credit from events alone.
interface IRewardDistributor {
    /// @notice Why an account was credited.
    enum CreditReason {
        TrainerReward,
        ValidatorReward,
        Refund
    }

    /// @notice `amount` tokens from `from` now back task `taskId`'s escrow.
    event Deposited(uint256 indexed taskId, address indexed from, uint256 amount);

    /// @notice `amount` moved from task `taskId`'s escrow to `account`'s claimable credit, for `round`
    /// (for a refund, the round in which the task ended or the settled round that released it).
    event Credited(
        address indexed account, uint256 indexed taskId, uint256 indexed round, uint256 amount, CreditReason reason
    );

    /// @notice `account` was paid its whole credit, `amount`.
    event Claimed(address indexed account, uint256 amount);

    /// @notice Only the TaskEscrow of this deployment may call this function.
    error OnlyTaskEscrow(address caller);

    /// @notice `account` has no credit to claim.
    error NothingToClaim(address account);

    /// @notice None of the `accounts` accounts of a `claimFor` batch had credit.
    error NothingToClaimFor(uint256 accounts);

    /// @notice A credit of `amount` exceeds the `escrowed` total.
    error CreditExceedsEscrow(uint256 amount, uint256 escrowed);

    /// @notice Record that `amount` tokens from `from` arrived for task `taskId` (only the TaskEscrow, after it
    /// checked the balance delta).
    function recordDeposit(uint256 taskId, address from, uint256 amount) external;

    /// @notice Write `account`'s credit slot once, before its first credit (only the TaskEscrow, when the
    /// account joins a task; `recordDeposit` opens the depositor): crediting and claiming then rewrite a
    /// nonzero slot. Moves no funds.
    function open(address account) external;

    /// @notice Move `amount` of escrow to `account`'s credit (only the TaskEscrow).
    function credit(address account, uint256 amount, uint256 taskId, uint256 round, CreditReason reason) external;

    /// @notice Pay the caller all of its credit.
    /// @return amount The amount paid.
    function claim() external returns (uint256 amount);

    /// @notice Pay each of `accounts` all of its credit (anyone may call; an account without credit, or
    /// listed twice, is skipped; reverts NothingToClaimFor when none had any). Emits Claimed per account
    /// paid, as `claim` does.
    /// @return total The amount paid in all.
    function claimFor(address[] calldata accounts) external returns (uint256 total);

    /// @notice Whether `account`'s credit slot was opened (see `open`).
    function isOpen(address account) external view returns (bool);

    /// @notice `account`'s unclaimed credit.
    function creditOf(address account) external view returns (uint256);

    /// @notice Tokens held for tasks and not yet credited to anyone.
    function totalEscrowed() external view returns (uint256);

    /// @notice Credited tokens not yet claimed.
    function totalCredits() external view returns (uint256);

    /// @notice The deployment's ERC20.
    function token() external view returns (address);

    /// @notice The TaskEscrow allowed to record deposits and credit accounts.
    function taskEscrow() external view returns (address);
}
