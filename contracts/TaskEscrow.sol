// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IAttestationRegistry} from "./interfaces/IAttestationRegistry.sol";
import {IRewardDistributor} from "./interfaces/IRewardDistributor.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {ITaskEscrow} from "./interfaces/ITaskEscrow.sol";
import {Cohort} from "./Cohort.sol";
import {TaskRules} from "./TaskRules.sol";

/// @title TaskEscrow
/// @notice Tasks, rounds, submissions, seeds, O(1) finalisation and per-participant settlement.
///
/// The current round lives in one slot per task (TaskState) that is rewritten, never re-created, so the
/// per-round hot paths (submit, finalise) write few fresh slots: one per submission and one per finalised
/// round with a payout. The current round's work units are also kept packed, eight per slot, in slots of
/// the task that every round reuses (written when the task is created), so that finalisation sums the
/// accepted work with one read per eight submissions.
contract TaskEscrow is ITaskEscrow, ReentrancyGuardTransient {
    // slither-disable-start timestamp
    // (the phases are deadlines in block.timestamp by design: a proposer's seconds of skew move none of them
    // meaningfully; slither also counts comparisons of other fields of structs that hold a time)
    using SafeERC20 for IERC20;
    using Cohort for Cohort.Counter;

    uint256 private constant _BPS = 10_000;
    uint256 private constant _BLOCKHASH_WINDOW = 256;
    uint256 private constant _WORK_PER_SLOT = 8;
    uint256 private constant _WORK_BITS = 32;
    uint256 private constant _WORK_MASK = type(uint32).max;
    uint256 private constant _LOW_BITS = 0x5555555555555555555555555555555555555555555555555555555555555555;

    /// @param submittedRound the last round the trainer submitted in, plus one
    /// @param unsettled the trainer's submissions not settled yet (they keep its allocation locked)
    /// @param settledRounds the validator's rounds settled by {settleValidator}; the rounds it is expected
    /// in and not settled keep its allocation locked (see {lockedUntil}). For a trainer: its no-shows
    /// settled by {settleNoShows}.
    /// @param submissions the trainer's submissions
    /// @param leftRound the round in which the trainer's seat was freed, plus one (0 while it holds it)
    /// @param validatorIndex the validator's index in the registry (its bit in `_validatorsSettled`)
    struct Participant {
        Role role;
        uint32 fromRound;
        uint32 submittedRound;
        uint32 unsettled;
        uint32 settledRounds;
        uint32 submissions;
        uint32 leftRound;
        uint8 validatorIndex;
    }

    struct Submission {
        address trainer;
        uint32 workUnits;
        bool settled;
    }

    struct Funds {
        uint128 remaining;
        uint128 reserved;
    }

    /// @dev Written with `hadBallot` when the seed is drawn, so finalisation rewrites a nonzero slot.
    /// Amounts fit in 120 bits because a task's deposit does.
    struct RoundResult {
        uint120 rate;
        uint120 validatorShare;
        bool hadBallot;
    }

    /// @dev What the ballot of a round decided, as read when finalising it.
    struct Outcome {
        uint256 acceptedWork;
        uint256 revealed;
        bool agreed;
        bytes32 winner;
    }

    /// @dev A finalised round's money, as emitted in RoundFinalized.
    struct Payout {
        uint256 budget;
        uint256 rate;
        uint256 share;
        uint256 carry;
    }

    IERC20 private immutable _token;
    IStakeManager private immutable _stakes;
    IRewardDistributor private immutable _distributor;
    IAttestationRegistry private immutable _registry;
    uint256 private immutable _settlementGrace;

    uint256 private _taskCount;
    mapping(uint256 taskId => TaskConfig) private _configs;
    mapping(uint256 taskId => TaskState) private _states;
    mapping(uint256 taskId => Funds) private _funds;
    mapping(uint256 taskId => bytes32 modelHash) private _baseModels;
    mapping(uint256 taskId => Cohort.Counter) private _trainers;
    mapping(uint256 taskId => mapping(address account => Participant)) private _participants;
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 index => Submission))) private _submissions;
    mapping(uint256 taskId => mapping(uint256 slot => uint256 units)) private _roundWork;
    mapping(uint256 taskId => mapping(uint256 round => RoundResult)) private _results;
    mapping(uint256 taskId => mapping(uint256 round => bytes32 seed)) private _seeds;
    /// @dev Bit i: the validator of registry index i (< 255) is settled for the round; one slot a round
    /// instead of one per validator.
    mapping(uint256 taskId => mapping(uint256 round => uint256 bits)) private _validatorsSettled;

    /// @param token_ the deployment's ERC20, for rewards and stakes
    /// @param stakes_, distributor_, registry_ the other contracts of the deployment (addresses may be
    /// computed before they are deployed)
    /// @param settlementGrace_ seconds an allocation stays locked after its task ended
    constructor(
        IERC20 token_,
        IStakeManager stakes_,
        IRewardDistributor distributor_,
        IAttestationRegistry registry_,
        uint256 settlementGrace_
    ) {
        _token = token_;
        _stakes = stakes_;
        _distributor = distributor_;
        _registry = registry_;
        _settlementGrace = settlementGrace_;
    }

    // ---------------------------------------------------------------- tasks

    /// @inheritdoc ITaskEscrow
    function createTask(TaskParams calldata params) external nonReentrant returns (uint256 taskId) {
        taskId = ++_taskCount;
        uint256 deposit = TaskRules.configure(_configs[taskId], params);
        TaskState storage state = _states[taskId];
        state.roundStart = uint40(params.startTime);
        state.submitEnd = uint40(params.startTime + params.submitDuration);
        state.status = TaskStatus.Active;
        _funds[taskId].remaining = uint128(deposit);
        _baseModels[taskId] = params.initialModelHash;
        mapping(uint256 => uint256) storage work = _roundWork[taskId];
        for (uint256 slot = 0; slot * _WORK_PER_SLOT < params.maxTrainers; ++slot) {
            work[slot] = type(uint256).max;
        }
        _registry.initTask(taskId, params.maxTrainers, params.committeeDraws);
        emit TaskCreated(taskId, msg.sender, params, deposit);

        address vault = address(_distributor);
        uint256 before = _token.balanceOf(vault);
        _token.safeTransferFrom(msg.sender, vault, deposit);
        // A token hook may move funds out of the vault during the transfer (a re-entrant claim): the
        // balance can then fall below `before`, which is a shortfall too, not an underflow panic.
        uint256 afterwards = _token.balanceOf(vault);
        if (afterwards != before + deposit) {
            revert TokenTransferShortfall(deposit, afterwards > before ? afterwards - before : 0);
        }
        _distributor.recordDeposit(taskId, msg.sender, deposit);
    }

    /// @inheritdoc ITaskEscrow
    function cancelTask(uint256 taskId) external nonReentrant {
        TaskState storage state = _states[taskId];
        _requireActive(taskId, state.status);
        TaskConfig storage config = _configs[taskId];
        if (msg.sender != config.initiator) revert NotInitiator(taskId, msg.sender);
        if (block.timestamp >= config.startTime) {
            revert TaskAlreadyStarted(taskId, config.startTime, block.timestamp);
        }
        state.status = TaskStatus.Cancelled;
        state.endedAt = uint40(block.timestamp);
        emit TaskCancelled(taskId, state.round, CancelReason.ByInitiator);
        _refund(taskId, state.round, config.initiator);
    }

    /// @inheritdoc ITaskEscrow
    function joinTask(uint256 taskId, Role role) external nonReentrant returns (uint256 fromRound) {
        if (role == Role.None) revert InvalidRole();
        TaskState memory state = _states[taskId];
        _requireActive(taskId, state.status);
        Participant storage participant = _participants[taskId][msg.sender];
        if (participant.role != Role.None) revert AlreadyJoined(taskId, msg.sender, participant.role);
        TaskConfig storage config = _configs[taskId];
        fromRound = block.timestamp < config.startTime ? 0 : uint256(state.round) + 1;
        if (fromRound >= config.numRounds) revert NoRoundsLeft(taskId, fromRound, config.numRounds);
        uint256 required = role == Role.Trainer ? config.minTrainerStake : config.minValidatorStake;
        uint256 allocated = _stakes.allocationOf(msg.sender, taskId);
        if (allocated < required) revert StakeTooLow(taskId, msg.sender, allocated, required);

        participant.role = role;
        participant.fromRound = uint32(fromRound);
        if (role == Role.Trainer) {
            Cohort.Counter storage trainers = _trainers[taskId];
            if (trainers.total() >= config.maxTrainers) revert TooManyTrainers(taskId, config.maxTrainers);
            trainers.add(fromRound);
            // A join before the start is active in round 0, the current round (at most 128 trainers).
            if (fromRound == state.round) _states[taskId].trainers = state.trainers + 1;
        } else {
            // The registry's index is below maxValidators <= 255.
            participant.validatorIndex = uint8(
                _registry.registerValidator(taskId, msg.sender, fromRound, config.maxValidators, allocated, required)
            );
        }
        emit Joined(taskId, msg.sender, role, fromRound);
        _distributor.open(msg.sender);
    }

    // ---------------------------------------------------------------- rounds

    /// @inheritdoc ITaskEscrow
    /// @dev No reentrancy guard: the only external call is a view of the StakeManager.
    function submitWork(
        uint256 taskId,
        uint256 round,
        bytes32 bundleHash,
        string calldata bundleCid,
        bytes32 updateHash,
        string calldata updateCid,
        bytes32 proofRoot,
        bytes32 stateRoot,
        uint256 workUnits
    ) external returns (uint256 index) {
        index = _recordSubmission(taskId, round, workUnits);
        emit WorkSubmitted(
            taskId,
            round,
            msg.sender,
            index,
            bundleHash,
            bundleCid,
            updateHash,
            updateCid,
            proofRoot,
            stateRoot,
            workUnits
        );
    }

    /// @inheritdoc ITaskEscrow
    function drawSeed(uint256 taskId) external nonReentrant returns (bool drawn) {
        TaskState storage state = _states[taskId];
        TaskState memory s = state;
        _requireActive(taskId, s.status);
        if (s.seedDrawn) revert SeedAlreadyDrawn(taskId, s.round);
        if (s.submissions == 0) revert NoSubmissions(taskId, s.round);
        TaskConfig storage config = _configs[taskId];
        if (s.seedBlock == 0) {
            if (block.timestamp < s.submitEnd) revert SubmitPhaseOpen(taskId, s.round, s.submitEnd, block.timestamp);
            _armSeed(state, taskId, s.round, config.seedDelay);
            return false;
        }
        if (block.number <= s.seedBlock) revert SeedTooEarly(s.seedBlock, block.number);
        if (block.number - s.seedBlock > _BLOCKHASH_WINDOW) {
            _armSeed(state, taskId, s.round, config.seedDelay);
            return false;
        }
        bytes32 seed = blockhash(s.seedBlock);
        state.seedDrawn = true;
        _seeds[taskId][s.round] = seed;
        _results[taskId][s.round].hadBallot = true;
        emit SeedDrawn(taskId, s.round, s.seedBlock, seed);
        uint256 commitDeadline = block.timestamp + config.commitDuration;
        uint256 revealDeadline = commitDeadline + config.revealDuration;
        _registry.openRound(
            taskId,
            s.round,
            s.submissions,
            config.quorum,
            commitDeadline,
            revealDeadline,
            revealDeadline + config.voteDuration,
            seed
        );
        return true;
    }

    /// @inheritdoc ITaskEscrow
    function finalizeRound(uint256 taskId) external nonReentrant {
        TaskState memory s = _states[taskId];
        _requireActive(taskId, s.status);
        // slither-disable-next-line uninitialized-local an empty round's outcome is all zeros
        Outcome memory outcome;
        if (s.submissions == 0) {
            // An empty round ends with its submit phase: at the deadline, or at once when nobody is expected
            // in it and someone waits for a later round or the task already had accepted work.
            bool early = s.trainers == 0 && (s.round > s.emptyRounds || _trainers[taskId].total() != 0);
            bool open = block.timestamp < s.roundStart || (block.timestamp < s.submitEnd && !early);
            if (open) revert SubmitPhaseOpen(taskId, s.round, s.submitEnd, block.timestamp);
        } else {
            if (!s.seedDrawn) revert SeedNotDrawn(taskId, s.round);
            bool closed;
            uint256 decisions;
            (closed, outcome.revealed, outcome.agreed, outcome.winner, decisions) =
                _registry.outcome(taskId, s.round);
            if (!closed) revert VotingNotClosed(taskId, s.round);
            outcome.acceptedWork = _acceptedWork(taskId, s.submissions, decisions);
        }
        _finalize(taskId, s, outcome);
    }

    // ---------------------------------------------------------------- settlement

    /// @inheritdoc ITaskEscrow
    function settleSubmission(uint256 taskId, uint256 round, uint256 index) external nonReentrant {
        TaskStatus status = _requireFinalized(taskId, round).status;
        if (!_settleSubmission(taskId, round, index, status)) revert SubmissionAlreadySettled(taskId, round, index);
    }

    /// @inheritdoc ITaskEscrow
    // slither-disable-next-line reentrancy-no-eth nonReentrant; each item is written before its own calls
    function settleRound(uint256 taskId, uint256 round, uint256[] calldata indices, address[] calldata validators)
        external
        nonReentrant
        returns (uint256 settled)
    {
        TaskStatus status = _requireFinalized(taskId, round).status;
        // At most 128 submissions and 255 validators a round are settled; duplicates are skipped.
        unchecked {
            for (uint256 i = 0; i < indices.length; ++i) {
                if (_settleSubmission(taskId, round, indices[i], status)) ++settled;
            }
            for (uint256 i = 0; i < validators.length; ++i) {
                if (_settleValidator(taskId, round, validators[i], status)) ++settled;
            }
        }
        if (settled == 0) revert NothingSettled(taskId, round);
    }

    /// @dev Settles submission `index` of finalised `round` of a task now in `status`; false (and nothing
    /// done) if it was settled. The round reserved `rate * workUnits` for it if its ballot accepted it: paid
    /// to the trainer when that ACCEPT is the settled decision; released ({_release}) when an appeal
    /// overturned it.
    // slither-disable-next-line calls-loop the deployment's own contracts, once per item of settleRound
    function _settleSubmission(uint256 taskId, uint256 round, uint256 index, TaskStatus status)
        private
        returns (bool)
    {
        Submission storage submission = _submissions[taskId][round][index];
        address trainer = submission.trainer;
        if (trainer == address(0)) revert UnknownSubmission(taskId, round, index);
        if (submission.settled) return false;
        submission.settled = true;
        // Each submission added one when it was recorded, and is settled once.
        unchecked {
            _participants[taskId][trainer].unsettled -= 1;
        }

        IAttestationRegistry.Verdict decision = _registry.decisionOf(taskId, round, index);
        bool accepted = decision == IAttestationRegistry.Verdict.Accept;
        // slither-disable-next-line uninitialized-local 0 unless the ballot accepted the submission
        uint256 reserved;
        // slither-disable-next-line uninitialized-local 0 unless the submission was rejected or unavailable
        uint256 slashed;
        // The round reserved the reward of every submission its ballot accepted. A settled REJECT may be an
        // acceptance the court overturned ({IAppealCourt-settledDecision}): only then is the ballot's own
        // decision read (a settled NONE or UNAVAILABLE never is one).
        if (
            accepted
                || (
                    decision == IAttestationRegistry.Verdict.Reject
                        && (_registry.decisionsOf(taskId, round) >> (2 * index)) & 3
                            == uint256(IAttestationRegistry.Verdict.Accept)
                )
        ) {
            reserved = uint256(_results[taskId][round].rate) * submission.workUnits;
        }
        if (!accepted && decision != IAttestationRegistry.Verdict.None) {
            slashed = _slashFraction(trainer, taskId, _configs[taskId].trainerSlashBps);
        }
        emit SubmissionSettled(taskId, round, index, trainer, decision, accepted ? reserved : 0, slashed);
        if (accepted) {
            _pay(taskId, round, trainer, reserved, IRewardDistributor.CreditReason.TrainerReward);
        } else if (reserved != 0) {
            emit RewardReleased(taskId, round, index, reserved);
            _release(taskId, round, reserved, status);
        }
        return true;
    }

    /// @inheritdoc ITaskEscrow
    function settleNoShows(uint256 taskId, address trainer) external nonReentrant {
        TaskState storage state = _states[taskId];
        TaskState memory s = state;
        if (s.status == TaskStatus.None) revert UnknownTask(taskId);
        Participant storage participant = _participants[taskId][trainer];
        Participant memory p = participant;
        if (p.role != Role.Trainer) revert NotTrainer(taskId, s.round, trainer);
        TaskConfig storage config = _configs[taskId];
        (uint256 missed, uint256 inARow) = _noShows(p, s);
        uint256 maxNoShows = config.maxNoShows;
        bool free = p.leftRound == 0 && s.status == TaskStatus.Active && maxNoShows != 0 && inARow >= maxNoShows;
        // slither-disable-next-line incorrect-equality a count of rounds, not a balance: == is exact
        if (missed == 0 && !free) revert NothingToSettle(taskId, trainer, inARow, maxNoShows);
        // Fewer than 2^32 rounds.
        participant.settledRounds = uint32(p.settledRounds + missed);
        if (free) {
            participant.leftRound = uint32(s.round + 1);
            _trainers[taskId].remove(p.fromRound);
            if (p.fromRound <= s.round) {
                // It was counted active in the current round (and did not submit in it: it missed it in a
                // row); the others may all have submitted, which closes the phase as a submission would.
                s.trainers -= 1;
                state.trainers = s.trainers;
                bool open = s.seedBlock == 0 && block.timestamp >= s.roundStart && block.timestamp < s.submitEnd;
                if (open && s.submissions != 0 && s.submissions == s.trainers) {
                    state.submitEnd = uint40(block.timestamp);
                    _armSeed(state, taskId, s.round, config.seedDelay);
                }
            }
        }
        if (missed != 0) {
            uint256 bps = missed * config.noShowSlashBps;
            uint256 slashed = _slashFraction(trainer, taskId, bps < _BPS ? bps : _BPS);
            emit NoShowsSettled(taskId, trainer, missed, slashed);
        }
        if (free) emit SeatFreed(taskId, trainer, s.round, inARow);
    }

    /// @inheritdoc ITaskEscrow
    function settleValidator(uint256 taskId, uint256 round, address validator) external nonReentrant {
        TaskStatus status = _requireFinalized(taskId, round).status;
        if (!_settleValidator(taskId, round, validator, status)) {
            revert ValidatorAlreadySettled(taskId, round, validator);
        }
    }

    /// @dev Settles `validator` for finalised `round` of a task now in `status`; false (and nothing done) if
    /// it was settled.
    // slither-disable-next-line calls-loop the deployment's own contracts, once per item of settleRound
    function _settleValidator(uint256 taskId, uint256 round, address validator, TaskStatus status)
        private
        returns (bool)
    {
        if (_isValidatorSettled(taskId, round, validator)) return false;
        (bool expected, bool revealed, bool agreed, uint256 weight) =
            _registry.validatorOutcome(taskId, round, validator);
        if (!expected) revert NotExpected(taskId, round, validator);
        _markValidatorSettled(taskId, round, validator);

        if (weight == 0) {
            // Not drawn in a committee of the round: owes nothing, earns nothing.
            emit ValidatorSettled(taskId, round, validator, ValidatorOutcome.NotDrawn, 0);
            return true;
        }
        if (!revealed) {
            uint256 slashed = _slashFraction(validator, taskId, _configs[taskId].validatorSlashBps);
            emit ValidatorSettled(taskId, round, validator, ValidatorOutcome.Slashed, slashed);
            return true;
        }
        // The round reserved `validatorShare` for every unit of revealed weight (one per revealer without
        // committees, its draws with them).
        uint256 share = uint256(_results[taskId][round].validatorShare) * weight;
        if (agreed) {
            emit ValidatorSettled(taskId, round, validator, ValidatorOutcome.Rewarded, share);
            _pay(taskId, round, validator, share, IRewardDistributor.CreditReason.ValidatorReward);
            return true;
        }
        emit ValidatorSettled(taskId, round, validator, ValidatorOutcome.Forfeited, share);
        _release(taskId, round, share, status);
        return true;
    }

    /// @dev Pays `amount`, reserved by finalised `round`, out of the task's reserve: credited to `account`
    /// for `reason` (nothing when 0).
    // slither-disable-next-line calls-loop the deployment's distributor, once per paid item of settleRound
    function _pay(
        uint256 taskId,
        uint256 round,
        address account,
        uint256 amount,
        IRewardDistributor.CreditReason reason
    ) private {
        // Reserved by the round: no underflow.
        unchecked {
            _funds[taskId].reserved -= uint128(amount);
        }
        if (amount != 0) _distributor.credit(account, amount, taskId, round, reason);
    }

    /// @dev Takes `amount`, reserved by finalised `round` and owed to nobody, out of the reserve of a task
    /// now in `status`: back to `remaining` (part of the current round's carry: it funds the rounds to come)
    /// while the task is active; once it has ended (its `remaining` refunded by then), credited to the
    /// initiator with reason Refund.
    function _release(uint256 taskId, uint256 round, uint256 amount, TaskStatus status) private {
        if (status != TaskStatus.Active) {
            _pay(taskId, round, _configs[taskId].initiator, amount, IRewardDistributor.CreditReason.Refund);
            return;
        }
        Funds storage funds = _funds[taskId];
        // Reserved by the round; remaining + reserved never exceed the deposit (< 2^120).
        unchecked {
            funds.reserved -= uint128(amount);
            funds.remaining += uint128(amount);
        }
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ITaskEscrow
    function taskConfig(uint256 taskId) external view returns (TaskConfig memory) {
        return _configs[taskId];
    }

    /// @inheritdoc ITaskEscrow
    function taskState(uint256 taskId) external view returns (TaskState memory) {
        return _states[taskId];
    }

    /// @inheritdoc ITaskEscrow
    function fundsOf(uint256 taskId) external view returns (uint256 remaining, uint256 reserved) {
        Funds memory funds = _funds[taskId];
        return (funds.remaining, funds.reserved);
    }

    /// @inheritdoc ITaskEscrow
    function baseModelOf(uint256 taskId) external view returns (bytes32) {
        return _baseModels[taskId];
    }

    /// @inheritdoc ITaskEscrow
    function participantOf(uint256 taskId, address account) external view returns (Role role, uint256 fromRound) {
        Participant memory participant = _participants[taskId][account];
        return (participant.role, participant.fromRound);
    }

    /// @inheritdoc ITaskEscrow
    function submissionOf(uint256 taskId, uint256 round, uint256 index)
        external
        view
        returns (address trainer, uint256 workUnits, bool settled)
    {
        Submission memory submission = _submissions[taskId][round][index];
        return (submission.trainer, submission.workUnits, submission.settled);
    }

    /// @inheritdoc ITaskEscrow
    function roundResultOf(uint256 taskId, uint256 round)
        external
        view
        returns (uint256 rate, uint256 validatorShare, bool hadBallot)
    {
        RoundResult memory result = _results[taskId][round];
        return (result.rate, result.validatorShare, result.hadBallot);
    }

    /// @inheritdoc ITaskEscrow
    function seedOf(uint256 taskId, uint256 round) external view returns (bytes32) {
        return _seeds[taskId][round];
    }

    /// @inheritdoc ITaskEscrow
    function activeTrainers(uint256 taskId, uint256 round) external view returns (uint256) {
        return _trainers[taskId].activeAt(round);
    }

    /// @inheritdoc ITaskEscrow
    function validatorSettled(uint256 taskId, uint256 round, address validator) external view returns (bool) {
        return _isValidatorSettled(taskId, round, validator);
    }

    /// @inheritdoc ITaskEscrow
    function lockedUntil(uint256 taskId, address staker) external view returns (uint256) {
        Participant memory participant = _participants[taskId][staker];
        // slither-disable-next-line incorrect-equality an enum, not a balance: == is exact
        if (participant.role == Role.None) return 0;
        TaskState memory s = _states[taskId];
        // slither-disable-next-line incorrect-equality an enum, not a balance: == is exact
        if (s.status == TaskStatus.Active || participant.unsettled != 0) return type(uint256).max;
        // slither-disable-next-line incorrect-equality an enum, not a balance: == is exact
        if (participant.role == Role.Trainer && _configs[taskId].noShowSlashBps != 0) {
            (uint256 noShows,) = _noShows(participant, s);
            if (noShows != 0) return type(uint256).max;
        }
        // slither-disable-next-line incorrect-equality an enum, not a balance: == is exact
        if (participant.role == Role.Validator && _validatorUnsettled(taskId, staker, participant, s) != 0) {
            return type(uint256).max;
        }
        if (s.endedAt < _configs[taskId].startTime) return s.endedAt;
        return uint256(s.endedAt) + _settlementGrace;
    }

    /// @inheritdoc ITaskEscrow
    function unsettledOf(uint256 taskId, address trainer) external view returns (uint256) {
        return _participants[taskId][trainer].unsettled;
    }

    /// @inheritdoc ITaskEscrow
    function noShowsOf(uint256 taskId, address trainer)
        external
        view
        returns (uint256 unsettled, uint256 missedInARow, bool seated)
    {
        Participant memory p = _participants[taskId][trainer];
        if (p.role != Role.Trainer) return (0, 0, false);
        (unsettled, missedInARow) = _noShows(p, _states[taskId]);
        // slither-disable-next-line incorrect-equality a round number's marker (0: the seat is held), not a balance
        return (unsettled, missedInARow, p.leftRound == 0);
    }

    /// @inheritdoc ITaskEscrow
    function validatorUnsettledOf(uint256 taskId, address validator) external view returns (uint256) {
        Participant memory participant = _participants[taskId][validator];
        if (participant.role != Role.Validator) return 0;
        return _validatorUnsettled(taskId, validator, participant, _states[taskId]);
    }

    /// @inheritdoc ITaskEscrow
    function validatorStakeOf(uint256 taskId, address validator)
        external
        view
        returns (uint256 allocated, uint256 required)
    {
        return (_stakes.allocationOf(validator, taskId), _configs[taskId].minValidatorStake);
    }

    /// @inheritdoc ITaskEscrow
    function taskCount() external view returns (uint256) {
        return _taskCount;
    }

    /// @inheritdoc ITaskEscrow
    function settlementGrace() external view returns (uint256) {
        return _settlementGrace;
    }

    /// @inheritdoc ITaskEscrow
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc ITaskEscrow
    function stakeManager() external view returns (address) {
        return address(_stakes);
    }

    /// @inheritdoc ITaskEscrow
    function rewardDistributor() external view returns (address) {
        return address(_distributor);
    }

    /// @inheritdoc ITaskEscrow
    function attestationRegistry() external view returns (address) {
        return address(_registry);
    }

    // ---------------------------------------------------------------- internals

    function _recordSubmission(uint256 taskId, uint256 round, uint256 workUnits) private returns (uint256 index) {
        if (workUnits == 0 || workUnits > type(uint32).max) revert InvalidWorkUnits(workUnits);
        TaskState storage state = _states[taskId];
        TaskState memory s = state;
        _requireActive(taskId, s.status);
        if (round != s.round) revert WrongRound(taskId, s.round, round);
        if (block.timestamp < s.roundStart || block.timestamp >= s.submitEnd) {
            revert SubmitPhaseNotOpen(taskId, round, s.roundStart, s.submitEnd, block.timestamp);
        }
        Participant storage participant = _participants[taskId][msg.sender];
        Participant memory p = participant;
        if (p.role != Role.Trainer || p.fromRound > round || p.leftRound != 0) {
            revert NotTrainer(taskId, round, msg.sender);
        }
        if (p.submittedRound == round + 1) revert AlreadySubmitted(taskId, round, msg.sender);
        TaskConfig storage config = _configs[taskId];
        uint256 minStake = config.minTrainerStake;
        if (minStake != 0) {
            // A slash takes a fraction of the allocation when the submission is settled: every unsettled
            // submission must have a minimum of its own behind it, or a second rejected one finds the
            // allocation already emptied by the first. uint128 * (2^32 + 1) cannot overflow.
            uint256 required = minStake * (uint256(p.unsettled) + 1);
            uint256 allocated = _stakes.allocationOf(msg.sender, taskId);
            if (allocated < required) revert StakeTooLow(taskId, msg.sender, allocated, required);
        }

        participant.submittedRound = uint32(round + 1);
        // One submission per round, so at most numRounds (< 2^32) of them.
        unchecked {
            participant.unsettled = p.unsettled + 1;
            participant.submissions = p.submissions + 1;
        }
        index = s.submissions;
        _submissions[taskId][round][index] = Submission(msg.sender, uint32(workUnits), false);
        uint256 shift = (index % _WORK_PER_SLOT) * _WORK_BITS;
        mapping(uint256 => uint256) storage work = _roundWork[taskId];
        work[index / _WORK_PER_SLOT] = (work[index / _WORK_PER_SLOT] & ~(_WORK_MASK << shift)) | (workUnits << shift);
        // At most maxTrainers (<= 128) trainers are active, each submits once.
        unchecked {
            s.submissions += 1;
        }
        state.submissions = s.submissions;
        if (s.submissions == s.trainers) {
            // Every expected trainer submitted: close now and fix the seed block.
            state.submitEnd = uint40(block.timestamp);
            _armSeed(state, taskId, round, config.seedDelay);
        }
    }

    function _armSeed(TaskState storage state, uint256 taskId, uint256 round, uint256 seedDelay) private {
        uint256 seedBlock = block.number + seedDelay;
        state.seedBlock = uint40(seedBlock);
        emit SeedArmed(taskId, round, seedBlock);
    }

    /// @dev Books the round's payouts, rolls the rest over and opens the next round or ends the task.
    function _finalize(uint256 taskId, TaskState memory s, Outcome memory outcome) private {
        TaskConfig storage config = _configs[taskId];
        uint256 round = s.round;
        uint256 roundsAfter = uint256(config.numRounds) - round - 1;
        Payout memory payout = _book(taskId, round, roundsAfter, outcome);

        bytes32 nextBase;
        if (outcome.agreed) {
            nextBase = outcome.winner;
            _baseModels[taskId] = nextBase;
        } else {
            nextBase = _baseModels[taskId];
        }

        s.emptyRounds = outcome.acceptedWork == 0 ? s.emptyRounds + 1 : 0;
        s.round = uint32(round + 1);
        s.submissions = 0;
        s.seedBlock = 0;
        s.seedDrawn = false;
        uint256 maxEmpty = config.maxEmptyRounds;
        // slither-disable-next-line uninitialized-local 0 is the documented nextSubmitDeadline of a task that ended
        uint256 nextDeadline;
        if (roundsAfter == 0) {
            s.status = TaskStatus.Completed;
            s.endedAt = uint40(block.timestamp);
        } else if (maxEmpty != 0 && s.emptyRounds >= maxEmpty) {
            s.status = TaskStatus.Cancelled;
            s.endedAt = uint40(block.timestamp);
        } else {
            nextDeadline = block.timestamp + config.submitDuration;
            s.roundStart = uint40(block.timestamp);
            s.submitEnd = uint40(nextDeadline);
            s.trainers = uint8(_trainers[taskId].activeAt(round + 1));
        }
        _states[taskId] = s;
        emit RoundFinalized(
            taskId,
            round,
            payout.budget,
            outcome.acceptedWork,
            payout.rate,
            outcome.revealed,
            payout.share,
            payout.carry,
            nextBase,
            nextDeadline
        );
        // slither-disable-next-line incorrect-equality an enum, not a balance: == is exact
        if (s.status == TaskStatus.Completed) {
            emit TaskCompleted(taskId);
            _refund(taskId, round, config.initiator);
        // slither-disable-next-line incorrect-equality an enum, not a balance: == is exact
        } else if (s.status == TaskStatus.Cancelled) {
            emit TaskCancelled(taskId, round, CancelReason.NoAcceptedWork);
            _refund(taskId, round, config.initiator);
        }
    }

    /// @dev Computes the round's budget, rate and validator share, and moves the payouts from remaining to
    /// reserved. The validators' cut comes out of the round's reward only, never out of the carry (unspent
    /// trainer pools would otherwise be taxed again every round), and only when at least `quorum` revealed:
    /// below it nothing can be decided, and the cut rolls over. With committees the quorum counts one
    /// submission's revealed draws, so the round's revealed weight must reach `quorum` per submission (a
    /// lone revealer whose draws decide nothing takes no cut). The floor divisions' dust stays in
    /// remaining: it is the next round's carry.
    function _book(uint256 taskId, uint256 round, uint256 roundsAfter, Outcome memory outcome)
        private
        returns (Payout memory payout)
    {
        TaskConfig storage config = _configs[taskId];
        Funds memory funds = _funds[taskId];
        payout.budget = funds.remaining - uint256(config.rewardPerRound) * roundsAfter;
        // slither-disable-next-line uninitialized-local no validator cut unless the quorum revealed
        uint256 validatorCut;
        // `quorum >= 1`, so `revealed != 0` below. The cut is at most rewardPerRound <= budget (a round
        // never pays more than its budget, so `remaining` keeps the reward of every round still to come).
        uint256 quorum = config.quorum;
        uint256 n = _states[taskId].submissions;
        if (config.committeeDraws != 0 && n != 0) quorum *= n;
        if (outcome.revealed >= quorum) {
            validatorCut = uint256(config.rewardPerRound) * config.validatorShareBps / _BPS;
            payout.share = validatorCut / outcome.revealed;
        }
        if (outcome.acceptedWork != 0) payout.rate = (payout.budget - validatorCut) / outcome.acceptedWork;
        uint256 paid = payout.rate * outcome.acceptedWork + payout.share * outcome.revealed;
        payout.carry = payout.budget - paid;
        if (paid != 0) {
            // `paid <= budget <= remaining`, and remaining + reserved never exceed the deposit (< 2^120).
            unchecked {
                funds.remaining -= uint128(paid);
                funds.reserved += uint128(paid);
            }
            _funds[taskId] = funds;
            RoundResult storage result = _results[taskId][round];
            result.rate = uint120(payout.rate);
            result.validatorShare = uint120(payout.share);
        }
    }

    /// @dev Credits everything not reserved to the initiator.
    function _refund(uint256 taskId, uint256 round, address initiator) private {
        Funds storage funds = _funds[taskId];
        uint256 amount = funds.remaining;
        if (amount == 0) return;
        funds.remaining = 0;
        emit Refunded(taskId, initiator, amount);
        _distributor.credit(initiator, amount, taskId, round, IRewardDistributor.CreditReason.Refund);
    }

    /// @dev Slashes `fractionBps` of the staker's current allocation to the task (never reverts for lack
    /// of stake: the StakeManager slashes at most what is left).
    // slither-disable-next-line calls-loop the deployment's stake manager, once per slashed item of settleRound
    function _slashFraction(address staker, uint256 taskId, uint256 fractionBps) private returns (uint256) {
        uint256 amount = _stakes.allocationOf(staker, taskId) * fractionBps / _BPS;
        return _stakes.slash(staker, taskId, amount);
    }

    /// @dev The finalised rounds in which `validator` is expected and that are not settled: the rounds the
    /// registry expects it in, less the current one while its ballot is open (not finalised yet), less the
    /// settled ones. Once the task has ended, every opened ballot belongs to a finalised round: the task
    /// ends by finalising its current round (completion, or too many empty rounds), or by {cancelTask}
    /// before its start, when no ballot can have opened.
    function _validatorUnsettled(uint256 taskId, address validator, Participant memory p, TaskState memory s)
        private
        view
        returns (uint256)
    {
        uint256 expected = _registry.expectedRoundsOf(taskId, validator);
        if (s.seedDrawn && s.round >= p.fromRound) expected -= 1;
        return expected - p.settledRounds;
    }

    /// @dev A trainer's no-shows not settled yet, and the rounds it missed in a row: the rounds it was
    /// active in are those from its first round to the last finalised one (`s.round - 1`), or to the round
    /// before the one in which its seat was freed; it submitted at most once in each (its submission in the
    /// current round, not finalised, is left out); it last submitted in `submittedRound - 1`.
    function _noShows(Participant memory p, TaskState memory s) private pure returns (uint256, uint256) {
        uint256 end = p.leftRound != 0 && p.leftRound - 1 < s.round ? p.leftRound - 1 : s.round;
        if (end <= p.fromRound) return (0, 0);
        uint256 submitted = p.submissions;
        if (p.submittedRound > end) submitted -= 1;
        uint256 since = p.submittedRound > p.fromRound ? p.submittedRound : p.fromRound;
        return (end - p.fromRound - submitted - p.settledRounds, since < end ? end - since : 0);
    }

    function _isValidatorSettled(uint256 taskId, uint256 round, address validator) private view returns (bool) {
        Participant storage p = _participants[taskId][validator];
        return p.role == Role.Validator && (_validatorsSettled[taskId][round] >> p.validatorIndex) & 1 == 1;
    }

    /// @dev Sets the validator's bit of the round and counts the round settled (once per round with a
    /// ballot: fewer than 2^32 rounds).
    function _markValidatorSettled(uint256 taskId, uint256 round, address validator) private {
        Participant storage p = _participants[taskId][validator];
        _validatorsSettled[taskId][round] |= uint256(1) << p.validatorIndex;
        unchecked {
            p.settledRounds += 1;
        }
    }

    function _requireActive(uint256 taskId, TaskStatus status) private pure {
        if (status == TaskStatus.Active) return;
        if (status == TaskStatus.None) revert UnknownTask(taskId);
        revert TaskNotActive(taskId, status);
    }

    function _requireFinalized(uint256 taskId, uint256 round) private view returns (TaskState memory s) {
        s = _states[taskId];
        // slither-disable-next-line incorrect-equality an enum, not a balance: == is exact
        if (s.status == TaskStatus.None) revert UnknownTask(taskId);
        if (round >= s.round) revert RoundNotFinalized(taskId, round);
    }

    /// @dev The work units of the current round's submissions that `decisions` accepts: one read of the
    /// packed work units per eight submissions.
    function _acceptedWork(uint256 taskId, uint256 n, uint256 decisions) private view returns (uint256 total) {
        mapping(uint256 => uint256) storage work = _roundWork[taskId];
        // The accept bit of each submission: the low bit of a field set and the high bit clear.
        uint256 accepted = decisions & ~(decisions >> 1) & _LOW_BITS;
        // At most 128 submissions of less than 2^32 units each: no overflow.
        unchecked {
            for (uint256 first = 0; first < n && accepted >> (2 * first) != 0; first += _WORK_PER_SLOT) {
                uint256 bits = (accepted >> (2 * first)) & 0xffff;
                if (bits == 0) continue;
                uint256 word = work[first / _WORK_PER_SLOT];
                for (uint256 k = 0; k < _WORK_PER_SLOT; ++k) {
                    if ((bits >> (2 * k)) & 1 == 1) total += (word >> (k * _WORK_BITS)) & _WORK_MASK;
                }
            }
        }
    }

    // slither-disable-end timestamp
}
