// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Cohort
/// @notice Counts the members of a task's role that are active in a round, without a loop at round start.
///
/// Members join with a first round that never decreases over time (round 0 before the task starts, then
/// always the next round). Those whose first round is the latest one seen wait in `pending`; a join with a
/// later first round folds them into `active`, because by then their first round has begun.
library Cohort {
    /// @param active members whose first round is at most the current round
    /// @param pending members whose first round is `pendingFrom`
    /// @param pendingFrom first round of the pending members
    struct Counter {
        uint16 active;
        uint16 pending;
        uint32 pendingFrom;
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

    /// @notice Members active in `round`, for the current round or a later one.
    function activeAt(Counter memory c, uint256 round) internal pure returns (uint256) {
        return c.pendingFrom <= round ? uint256(c.active) + c.pending : c.active;
    }

    /// @notice All members ever added.
    function total(Counter memory c) internal pure returns (uint256) {
        return uint256(c.active) + c.pending;
    }
}
