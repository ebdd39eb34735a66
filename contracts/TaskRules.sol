// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ITaskEscrow} from "./interfaces/ITaskEscrow.sol";

/// @title TaskRules
/// @notice A new task's set-up, as a library of its own: the rules its parameters must meet and the
/// storage of its configuration. The TaskEscrow calls it (DELEGATECALL, so it writes the escrow's storage)
/// when a task is created, which keeps this code out of the escrow's (near the 24,576-byte limit of a
/// contract's code).
library TaskRules {
    uint256 private constant _BPS = 10_000;
    uint256 private constant _MAX_TRAINERS = 128;
    uint256 private constant _MAX_VALIDATORS = 255;
    uint256 private constant _MAX_SEED_DELAY = 256;
    uint256 private constant _MAX_DRAWS = 64;
    /// @dev Times are stored as uint40; a start below half of that range leaves room for every deadline.
    uint256 private constant _MAX_START_TIME = type(uint40).max / 2;

    /// @notice Check `p` and store it as the task's configuration `c` (the caller is the initiator).
    /// Reverts with {ITaskEscrow-InvalidTaskParameter} naming the first parameter that breaks a rule.
    /// @return deposit `numRounds * rewardPerRound`, what the task escrows (below 2^120)
    function configure(ITaskEscrow.TaskConfig storage c, ITaskEscrow.TaskParams calldata p)
        external
        returns (uint256 deposit)
    {
        validate(p);
        deposit = uint256(p.rewardPerRound) * p.numRounds;
        if (deposit > type(uint120).max) revert ITaskEscrow.InvalidTaskParameter("rewardPerRound", p.rewardPerRound);
        c.rewardPerRound = p.rewardPerRound;
        c.numRounds = p.numRounds;
        c.submitDuration = p.submitDuration;
        c.maxEmptyRounds = p.maxEmptyRounds;
        c.validatorShareBps = p.validatorShareBps;
        c.quorum = p.quorum;
        c.maxTrainers = p.maxTrainers;
        c.initiator = msg.sender;
        c.trainerSlashBps = p.trainerSlashBps;
        c.validatorSlashBps = p.validatorSlashBps;
        c.commitDuration = p.commitDuration;
        c.seedDelay = p.seedDelay;
        c.minTrainerStake = p.minTrainerStake;
        c.minValidatorStake = p.minValidatorStake;
        c.startTime = p.startTime;
        c.revealDuration = p.revealDuration;
        c.voteDuration = p.voteDuration;
        c.sampleRollouts = p.sampleRollouts;
        c.sampleSteps = p.sampleSteps;
        c.maxValidators = p.maxValidators;
        c.noShowSlashBps = p.noShowSlashBps;
        c.maxNoShows = p.maxNoShows;
        c.committeeDraws = p.committeeDraws;
        c.specHash = p.specHash;
    }

    /// @notice Revert unless every parameter of `p` is valid (see {ITaskEscrow-TaskParams}).
    // slither-disable-next-line cyclomatic-complexity one flat check per task parameter, each with its own error
    function validate(ITaskEscrow.TaskParams calldata p) public view {
        if (p.specHash == 0) revert ITaskEscrow.InvalidTaskParameter("specHash", 0);
        if (p.initialModelHash == 0) revert ITaskEscrow.InvalidTaskParameter("initialModelHash", 0);
        if (p.numRounds == 0) revert ITaskEscrow.InvalidTaskParameter("numRounds", 0);
        if (p.rewardPerRound == 0) revert ITaskEscrow.InvalidTaskParameter("rewardPerRound", 0);
        if (p.validatorShareBps > _BPS) revert ITaskEscrow.InvalidTaskParameter("validatorShareBps", p.validatorShareBps);
        if (p.trainerSlashBps > _BPS) revert ITaskEscrow.InvalidTaskParameter("trainerSlashBps", p.trainerSlashBps);
        if (p.validatorSlashBps > _BPS) revert ITaskEscrow.InvalidTaskParameter("validatorSlashBps", p.validatorSlashBps);
        if (p.maxTrainers == 0 || p.maxTrainers > _MAX_TRAINERS) {
            revert ITaskEscrow.InvalidTaskParameter("maxTrainers", p.maxTrainers);
        }
        if (p.maxValidators == 0 || p.maxValidators > _MAX_VALIDATORS) {
            revert ITaskEscrow.InvalidTaskParameter("maxValidators", p.maxValidators);
        }
        // The quorum counts revealed verdicts: validators without committees, draws with them (at most
        // committeeDraws, below), so one validator holding many draws cannot decide alone.
        if (p.quorum == 0 || (p.committeeDraws == 0 && p.quorum > p.maxValidators)) {
            revert ITaskEscrow.InvalidTaskParameter("quorum", p.quorum);
        }
        if (p.submitDuration == 0) revert ITaskEscrow.InvalidTaskParameter("submitDuration", 0);
        if (p.commitDuration == 0) revert ITaskEscrow.InvalidTaskParameter("commitDuration", 0);
        if (p.revealDuration == 0) revert ITaskEscrow.InvalidTaskParameter("revealDuration", 0);
        // The model vote's window is split in two at the seed (commit, then reveal: ceil(voteDuration / 2)
        // each at most); with 1 s the reveal half is empty and no round could agree on a model.
        if (p.voteDuration < 2) revert ITaskEscrow.InvalidTaskParameter("voteDuration", p.voteDuration);
        if (p.seedDelay == 0 || p.seedDelay > _MAX_SEED_DELAY) revert ITaskEscrow.InvalidTaskParameter("seedDelay", p.seedDelay);
        if (p.sampleRollouts == 0) revert ITaskEscrow.InvalidTaskParameter("sampleRollouts", 0);
        if (p.sampleSteps == 0) revert ITaskEscrow.InvalidTaskParameter("sampleSteps", 0);
        if (p.noShowSlashBps > _BPS) revert ITaskEscrow.InvalidTaskParameter("noShowSlashBps", p.noShowSlashBps);
        bool drawsFit = p.committeeDraws == 0 || (p.quorum <= p.committeeDraws && p.minValidatorStake != 0);
        if (p.committeeDraws > _MAX_DRAWS || !drawsFit) {
            revert ITaskEscrow.InvalidTaskParameter("committeeDraws", p.committeeDraws);
        }
        // slither-disable-next-line timestamp a start not in the past: a proposer's seconds of skew change nothing
        if (p.startTime < block.timestamp || p.startTime > _MAX_START_TIME) {
            revert ITaskEscrow.InvalidTaskParameter("startTime", p.startTime);
        }
    }
}
