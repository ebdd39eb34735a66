// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Cohort
/// @notice Counts the members of a task's role that are active in a round, without a loop at round start.
///
/// Members join with a first round that never decreases over time (round 0 before the task starts, then
/// always the next round). Those whose first round is the latest one seen wait in `pending`; a join with a
/// later first round folds them into `active`, because by then their first round has begun.
///
/// `ballots` counts the rounds in which the cohort was called to vote ({markBallot}) and `lastBallot` is
/// the latest of them plus one: the AttestationRegistry's validator cohort counts the task's opened ballots
/// there (the TaskEscrow's trainer cohort leaves them at 0). They share the slot that opening a ballot and
/// registering a validator read anyway.
library Cohort {
    /// @param active members whose first round is at most the current round
    /// @param pending members whose first round is `pendingFrom`
    /// @param pendingFrom first round of the pending members
    /// @param ballots rounds whose ballot opened (one per round at most, so fewer than 2^32)
    /// @param lastBallot the round of the latest ballot plus one (0: none yet)
    struct Counter {
        uint16 active;
        uint16 pending;
        uint32 pendingFrom;
        uint32 ballots;
        uint32 lastBallot;
    }

    /// @notice Add a member active from `fromRound` on (not less than any earlier member's first round).
    function add(Counter storage counter, uint256 fromRound) internal {
        Counter memory c = counter;
        if (fromRound != c.pendingFrom) {
            c.active += c.pending;
            c.pending = 0;
            c.pendingFrom = uint32(fromRound);
        }
        c.pending += 1;
        counter.active = c.active;
        counter.pending = c.pending;
        counter.pendingFrom = c.pendingFrom;
    }

    /// @notice Remove a member added with `fromRound` (its seat is freed). Members whose first round is
    /// `pendingFrom` are pending, the others active.
    function remove(Counter storage counter, uint256 fromRound) internal {
        if (fromRound == counter.pendingFrom) {
            counter.pending -= 1;
        } else {
            counter.active -= 1;
        }
    }

    /// @notice Count one more round whose ballot opened: `round`.
    function markBallot(Counter storage counter, uint256 round) internal {
        counter.ballots += 1;
        counter.lastBallot = uint32(round + 1);
    }

    /// @notice Members active in `round`, for the current round or a later one.
    /// @dev Reads the fields from storage: copying the whole struct to memory cost every submission a few
    /// hundred gas more.
    function activeAt(Counter storage c, uint256 round) internal view returns (uint256) {
        return c.pendingFrom <= round ? uint256(c.active) + c.pending : c.active;
    }

    /// @notice All members ever added.
    function total(Counter storage c) internal view returns (uint256) {
        return uint256(c.active) + c.pending;
    }
}
