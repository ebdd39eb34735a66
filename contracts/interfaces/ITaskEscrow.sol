// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAttestationRegistry} from "./IAttestationRegistry.sol";

/// @title ITaskEscrow
/// @notice Tasks, their escrowed reward, participants, rounds, submissions, seeds, finalisation and settlement.
///
/// Round r of an active task: the submit phase runs from the round's start (the task's `startTime` for
/// round 0, the finalisation of round r-1 otherwise) until `roundStart + submitDuration`, or closes early
/// when every trainer active in r has submitted. Closing fixes `seedBlock = block.number + seedDelay`
/// (after a deadline close, the first {drawSeed} call fixes it). {drawSeed} then stores `blockhash(seedBlock)`
/// and opens the round's ballot in the AttestationRegistry. When the ballot is closed (model vote over),
/// anyone calls {finalizeRound} (O(1)); each participant's share is then settled by {settleSubmission} and
/// {settleValidator}, or a round's at once by {settleRound}, and claimed from the RewardDistributor.
///
/// Money: a task's escrow is `remaining` (not yet assigned to any round's payouts: the reward of the
/// rounds still to come plus the carry) and `reserved` (assigned by finalised rounds to payouts not yet
/// settled). Round r's budget is `rewardPerRound + carry`, where
/// `carry = remaining - rewardPerRound * (numRounds - r)`. The validators' cut,
/// `rewardPerRound * validatorShareBps / 10000`, is taken from it only when at least `quorum` validators
/// revealed, and split equally among the revealers; the rest of the budget is the trainers' pool, paid
/// pro rata to accepted work units. When the last round is finalised or the task is cancelled,
/// `remaining` is credited to the initiator.
interface ITaskEscrow {
    /// @notice The role of a task participant.
    enum Role {
        None,
        Trainer,
        Validator
    }

    /// @notice The life of a task. A task is Active from creation (joins are allowed before its start time)
    /// until it completes its last round or is cancelled.
    enum TaskStatus {
        None,
        Active,
        Completed,
        Cancelled
    }

    /// @notice Why a task was cancelled.
    enum CancelReason {
        ByInitiator,
        NoAcceptedWork
    }

    /// @notice How a validator's round was settled.
    enum ValidatorOutcome {
        Rewarded,
        Forfeited,
        Slashed,
        NotDrawn
    }

    /// @notice Parameters of a new task.
    /// @param specHash sha256 of the task spec (the CID locates it)
    /// @param initialModelHash sha256 of round 0's base checkpoint
    /// @param numRounds number of rounds (>= 1)
    /// @param rewardPerRound reward added to each round's budget (> 0); `numRounds * rewardPerRound` is escrowed
    /// and must be below 2^120
    /// @param validatorShareBps share of `rewardPerRound` (never of the carry) for the validators, in basis
    /// points; paid only in rounds where at least `quorum` validators revealed
    /// @param minTrainerStake, minValidatorStake allocation to the task required to join in each role
    /// @param quorum minimum revealed verdicts for any decision (1..maxValidators; with committees revealed
    /// draws, 1..committeeDraws)
    /// @param maxTrainers at most 128 (verdict vectors have 2 bits per submission)
    /// @param maxValidators at most 255
    /// @param submitDuration, commitDuration, revealDuration, voteDuration phase lengths in seconds (> 0)
    /// @param seedDelay blocks between the close of submissions and the seed block (1..256)
    /// @param sampleRollouts, sampleSteps how many rollouts and training steps the seed picks per submission
    /// @param trainerSlashBps fraction of its allocation a REJECTED or UNAVAILABLE trainer loses
    /// @param validatorSlashBps fraction of its allocation a validator that did not reveal loses
    /// @param maxEmptyRounds consecutive rounds with no accepted work that cancel the task (0: never)
    /// @param startTime when round 0's submit phase opens (>= now); joins before it count for round 0
    /// @param noShowSlashBps fraction of its allocation a trainer loses for each round it was active in and
    /// did not submit to (a no-show; settled by {settleNoShows}, at most the whole allocation at once)
    /// @param maxNoShows consecutive no-shows after which anyone may free the trainer's seat (0: never)
    /// @param committeeDraws k: stake-weighted committee draws per submission (0: every validator judges
    /// every submission; 1..64, at least `quorum`, and a nonzero `minValidatorStake`, the weight unit)
    struct TaskParams {
        bytes32 specHash;
        string specCid;
        bytes32 initialModelHash;
        string initialModelCid;
        uint32 numRounds;
        uint128 rewardPerRound;
        uint16 validatorShareBps;
        uint128 minTrainerStake;
        uint128 minValidatorStake;
        uint8 quorum;
        uint8 maxTrainers;
        uint8 maxValidators;
        uint32 submitDuration;
        uint32 commitDuration;
        uint32 revealDuration;
        uint32 voteDuration;
        uint32 seedDelay;
        uint16 sampleRollouts;
        uint16 sampleSteps;
        uint16 trainerSlashBps;
        uint16 validatorSlashBps;
        uint32 maxEmptyRounds;
        uint64 startTime;
        uint16 noShowSlashBps;
        uint8 maxNoShows;
        uint8 committeeDraws;
    }

    /// @notice The stored, immutable part of a task (the CIDs are only in TaskCreated). Fields are grouped by
    /// storage slot: the first slot holds everything finalisation reads.
    struct TaskConfig {
        uint128 rewardPerRound;
        uint32 numRounds;
        uint32 submitDuration;
        uint32 maxEmptyRounds;
        uint16 validatorShareBps;
        uint8 quorum;
        uint8 maxTrainers;
        address initiator;
        uint16 trainerSlashBps;
        uint16 validatorSlashBps;
        uint32 commitDuration;
        uint32 seedDelay;
        uint128 minTrainerStake;
        uint128 minValidatorStake;
        uint64 startTime;
        uint32 revealDuration;
        uint32 voteDuration;
        uint16 sampleRollouts;
        uint16 sampleSteps;
        uint8 maxValidators;
        uint16 noShowSlashBps;
        uint8 maxNoShows;
        uint8 committeeDraws;
        bytes32 specHash;
    }

    /// @notice The live state of a task (one storage slot).
    /// @param round the current round (== numRounds once the last one is finalised)
    /// @param roundStart when the current round's submit phase opened (or opens, for round 0)
    /// @param submitEnd end of the submit phase: the deadline, or the time of the early close
    /// @param submissions number of submissions in the current round
    /// @param seedBlock the block whose hash seeds the round (0 until armed)
    /// @param seedDrawn whether the seed of the current round was drawn (the ballot is open)
    /// @param emptyRounds consecutive finalised rounds with no accepted work
    /// @param endedAt when the task completed or was cancelled (0 while active)
    /// @param trainers trainers active in the current round ({activeTrainers} of it, kept here so that a
    /// submission reads no other slot to know whether it is the last one expected)
    struct TaskState {
        uint32 round;
        uint40 roundStart;
        uint40 submitEnd;
        uint8 submissions;
        uint40 seedBlock;
        bool seedDrawn;
        TaskStatus status;
        uint32 emptyRounds;
        uint40 endedAt;
        uint8 trainers;
    }

    /// @notice A task was created and `deposit` (= numRounds * rewardPerRound) escrowed.
    event TaskCreated(uint256 indexed taskId, address indexed initiator, TaskParams params, uint256 deposit);

    /// @notice `account` joined `taskId` as `role`, active from round `fromRound` on.
    event Joined(uint256 indexed taskId, address indexed account, Role role, uint256 fromRound);

    /// @notice `trainer` committed its work for `round`; `index` is its position in the verdict vectors.
    event WorkSubmitted(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed trainer,
        uint256 index,
        bytes32 bundleHash,
        string bundleCid,
        bytes32 updateHash,
        string updateCid,
        bytes32 proofRoot,
        bytes32 stateRoot,
        uint256 workUnits
    );

    /// @notice The submit phase of `round` is closed; the seed will be the hash of block `seedBlock`.
    event SeedArmed(uint256 indexed taskId, uint256 indexed round, uint256 seedBlock);

    /// @notice The seed of `round` was drawn: `seed = blockhash(seedBlock)`.
    event SeedDrawn(uint256 indexed taskId, uint256 indexed round, uint256 seedBlock, bytes32 seed);

    /// @notice `round` was finalised. Accepted submissions are paid `rate` per work unit, each validator that
    /// revealed and agreed `validatorShare` (0 when fewer than `quorum` revealed); `rate * acceptedWork + validatorShare * revealed` moved from
    /// remaining to reserved; `carry = budget - that` rolls over. `nextBase` is the base checkpoint of the
    /// next round, whose submit phase ends at `nextSubmitDeadline` (0 when the task ended).
    event RoundFinalized(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 budget,
        uint256 acceptedWork,
        uint256 rate,
        uint256 revealed,
        uint256 validatorShare,
        uint256 carry,
        bytes32 nextBase,
        uint256 nextSubmitDeadline
    );

    /// @notice Submission `index` of `round` was settled: `reward` credited to `trainer` (ACCEPT), or
    /// `slashed` from its allocation (REJECT, UNAVAILABLE); an undecided one gets neither.
    event SubmissionSettled(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 indexed index,
        address trainer,
        IAttestationRegistry.Verdict decision,
        uint256 reward,
        uint256 slashed
    );

    /// @notice The reward `amount` (`rate * workUnits`) that `round` reserved for submission `index`, which
    /// its ballot accepted and an appeal overturned, left the reserve (in the transaction of the
    /// submission's SubmissionSettled): back to `remaining`, i.e. the carry that funds the rounds to come,
    /// while the task is active; credited to the initiator with reason Refund once it has ended.
    event RewardReleased(uint256 indexed taskId, uint256 indexed round, uint256 indexed index, uint256 amount);

    /// @notice `validator`'s part in `round` was settled: Rewarded (`amount` credited from the reserve),
    /// Forfeited (its share `amount` left the reserve: back to `remaining`, i.e. the carry, while the task
    /// is active; credited to the initiator with reason Refund once it has ended), or Slashed (`amount`
    /// slashed from its allocation for not revealing).
    event ValidatorSettled(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed validator,
        ValidatorOutcome outcome,
        uint256 amount
    );

    /// @notice The task completed its last round.
    event TaskCompleted(uint256 indexed taskId);

    /// @notice The task was cancelled in `round`.
    event TaskCancelled(uint256 indexed taskId, uint256 round, CancelReason reason);

    /// @notice `rounds` more rounds in which `trainer` was active and did not submit were settled: `slashed`
    /// taken from its allocation (`min(rounds * noShowSlashBps, 10000)` basis points of it).
    event NoShowsSettled(uint256 indexed taskId, address indexed trainer, uint256 rounds, uint256 slashed);

    /// @notice `trainer` missed `missed` rounds in a row (at least `maxNoShows`), and its seat was freed in
    /// `round`: it takes no further part (it is no longer active, from `round` on), and another trainer may
    /// join in its place.
    event SeatFreed(uint256 indexed taskId, address indexed trainer, uint256 round, uint256 missed);

    /// @notice The task ended and its `remaining` escrow, `amount`, was credited to the initiator.
    event Refunded(uint256 indexed taskId, address indexed initiator, uint256 amount);

    /// @notice Task parameter `name` has the invalid value `value`.
    error InvalidTaskParameter(string name, uint256 value);

    /// @notice No task has id `taskId`.
    error UnknownTask(uint256 taskId);

    /// @notice The task is `status`, not Active.
    error TaskNotActive(uint256 taskId, TaskStatus status);

    /// @notice Only the task's initiator may do this.
    error NotInitiator(uint256 taskId, address caller);

    /// @notice The task started at `startTime` (`timestamp` is now).
    error TaskAlreadyStarted(uint256 taskId, uint256 startTime, uint256 timestamp);

    /// @notice `account` already joined `taskId` as `role`.
    error AlreadyJoined(uint256 taskId, address account, Role role);

    /// @notice Role None is not a role one can join as.
    error InvalidRole();

    /// @notice The task already has `maxTrainers` trainers.
    error TooManyTrainers(uint256 taskId, uint256 maxTrainers);

    /// @notice A join now would take effect in round `fromRound`, but the task has only `numRounds` rounds.
    error NoRoundsLeft(uint256 taskId, uint256 fromRound, uint256 numRounds);

    /// @notice `account` allocated `allocated` to the task; the role requires `required` (a trainer that submits:
    /// `minTrainerStake` times one plus its unsettled submissions).
    error StakeTooLow(uint256 taskId, address account, uint256 allocated, uint256 required);

    /// @notice The call names round `given` but the task is in round `current`.
    error WrongRound(uint256 taskId, uint256 current, uint256 given);

    /// @notice `account` is not a trainer of `taskId` active in `round`.
    error NotTrainer(uint256 taskId, uint256 round, address account);

    /// @notice `trainer` has no unsettled no-show, and its seat cannot be freed (it missed `missed` rounds in a
    /// row; `maxNoShows` frees it, 0 never).
    error NothingToSettle(uint256 taskId, address trainer, uint256 missed, uint256 maxNoShows);

    /// @notice The submit phase of `round` runs from `opensAt` to `closesAt` (`timestamp` is now).
    error SubmitPhaseNotOpen(uint256 taskId, uint256 round, uint256 opensAt, uint256 closesAt, uint256 timestamp);

    /// @notice `trainer` already submitted in `round`.
    error AlreadySubmitted(uint256 taskId, uint256 round, address trainer);

    /// @notice A submission needs at least one work unit and at most 2^32 - 1.
    error InvalidWorkUnits(uint256 workUnits);

    /// @notice The seed of `round` was already drawn.
    error SeedAlreadyDrawn(uint256 taskId, uint256 round);

    /// @notice `round` has no submission, so it needs no seed (it is finalised as an empty round).
    error NoSubmissions(uint256 taskId, uint256 round);

    /// @notice The submit phase of `round` is still open until `submitEnd` (`timestamp` is now).
    error SubmitPhaseOpen(uint256 taskId, uint256 round, uint256 submitEnd, uint256 timestamp);

    /// @notice The seed block `seedBlock` is not yet in the past (`blockNumber` is now).
    error SeedTooEarly(uint256 seedBlock, uint256 blockNumber);

    /// @notice `round` has submissions and its seed was not drawn yet.
    error SeedNotDrawn(uint256 taskId, uint256 round);

    /// @notice The ballot of `round` is not closed yet.
    error VotingNotClosed(uint256 taskId, uint256 round);

    /// @notice `round` is not finalised yet.
    error RoundNotFinalized(uint256 taskId, uint256 round);

    /// @notice `round` has no submission with index `index`.
    error UnknownSubmission(uint256 taskId, uint256 round, uint256 index);

    /// @notice Submission `index` of `round` is already settled.
    error SubmissionAlreadySettled(uint256 taskId, uint256 round, uint256 index);

    /// @notice `validator` is already settled for `round`.
    error ValidatorAlreadySettled(uint256 taskId, uint256 round, address validator);

    /// @notice `validator` was not an active validator of a round that had a ballot.
    error NotExpected(uint256 taskId, uint256 round, address validator);

    /// @notice {settleRound} settled nothing: every item it was given was settled already (or it was given
    /// none).
    error NothingSettled(uint256 taskId, uint256 round);

    /// @notice A transfer in delivered `received` tokens instead of `expected`; fee-on-transfer tokens are
    /// refused.
    error TokenTransferShortfall(uint256 expected, uint256 received);

    /// @notice Create a task and escrow `numRounds * rewardPerRound` from the caller (approve this contract
    /// first; the tokens go to the RewardDistributor and must arrive in full).
    function createTask(TaskParams calldata params) external returns (uint256 taskId);

    /// @notice Cancel a task before its start time and refund its whole escrow (initiator only).
    function cancelTask(uint256 taskId) external;

    /// @notice Join `taskId` as `role` with at least the role's minimum stake allocated to it. Effective for
    /// round 0 before the task's start time, otherwise from the next round.
    /// @return fromRound The first round in which the caller takes part.
    function joinTask(uint256 taskId, Role role) external returns (uint256 fromRound);

    /// @notice Commit a trainer's work for `round` (one submission per trainer per round). The caller's allocation
    /// must be at least `minTrainerStake` for this submission and for each of its submissions not yet settled
    /// ({unsettledOf}), so that every rejected submission has a minimum of stake to be slashed from.
    /// @param bundleHash, bundleCid sha256 and CID of the rollout bundle
    /// @param updateHash, updateCid sha256 and CID of the update (pseudo-gradient)
    /// @param proofRoot Merkle root over the rollout leaves
    /// @param stateRoot Merkle root over the content hashes of the training states
    /// @param workUnits generated tokens (EOS included, padding not), 1 .. 2^32 - 1
    /// @return index The submission's position in the round's verdict vectors (order of arrival).
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
    ) external returns (uint256 index);

    /// @notice Arm or draw the current round's seed (permissionless). After the submit deadline with the seed
    /// unarmed: arms it (`seedBlock = block.number + seedDelay`). Armed and `block.number <= seedBlock`:
    /// reverts {SeedTooEarly}. More than 256 blocks after `seedBlock`: re-arms. Otherwise stores
    /// `blockhash(seedBlock)` and opens the round's ballot.
    /// @return drawn Whether the seed was drawn (false: it was armed or re-armed).
    function drawSeed(uint256 taskId) external returns (bool drawn);

    /// @notice Finalise the current round once its ballot is closed (or, with no submission, once its submit
    /// phase is over); permissionless. Opens the next round, or ends the task and refunds the rest. A round
    /// without submissions ends at its submit deadline; before it only when no trainer is active in it and
    /// either a trainer waits for a later round or an earlier round had accepted work (so nobody can end a
    /// task's rounds before its trainers have joined).
    /// @dev One read per eight submissions (the accepted work); otherwise O(1).
    function finalizeRound(uint256 taskId) external;

    /// @notice Settle submission `index` of a finalised round (permissionless, once) on its settled decision
    /// ({IAttestationRegistry-decisionOf}): ACCEPT credits `rate * workUnits` to the trainer, REJECT or
    /// UNAVAILABLE slashes `trainerSlashBps` of its allocation. An ACCEPT of the ballot that an appeal
    /// overturned also releases the `rate * workUnits` the round reserved for it ({RewardReleased}).
    /// Either way the trainer has one unsettled submission less (see {lockedUntil}).
    function settleSubmission(uint256 taskId, uint256 round, uint256 index) external;

    /// @notice Settle `trainer`'s no-shows (permissionless): the finalised rounds in which it was active and
    /// did not submit, not settled yet, each costing `noShowSlashBps` of its allocation (at most all of it).
    /// Once it missed `maxNoShows` rounds in a row (when nonzero) and the task is active, its seat is also
    /// freed: it is no longer active, another trainer may join, and a submit phase in which everyone else
    /// active has submitted closes. Reverts {NothingToSettle} when there is neither.
    /// @dev O(1): no-shows = rounds finalised since its first round (until its seat was freed) - its
    /// submissions in them - those settled ({noShowsOf}).
    function settleNoShows(uint256 taskId, address trainer) external;

    /// @notice Settle `validator` for a finalised round with a ballot (permissionless, once): revealed and agreed
    /// with every decided outcome: credit its share; revealed and disagreed: its share returns to the task;
    /// active but never revealed: slash `validatorSlashBps` of its allocation. Either way the validator has
    /// one unsettled round less (see {validatorUnsettledOf}, {lockedUntil}).
    function settleValidator(uint256 taskId, uint256 round, address validator) external;

    /// @notice Settle, in one transaction, submissions `indices` and validators `validators` of a finalised
    /// round (permissionless): each as {settleSubmission} and {settleValidator} would, with the same events.
    /// An item settled already (by anyone, or earlier in the lists) is skipped, so a batch cannot be blocked
    /// by another keeper settling part of it first; an item that cannot be settled at all reverts the batch
    /// with the single call's error ({UnknownSubmission}, {NotExpected}); reverts {NothingSettled} when
    /// every item was skipped. Returns how many items it settled.
    /// @dev Each item costs its own storage (the submission, the participant, the credit); what every item
    /// of a round shares (the task, the round's result, the escrow's funds, the other contracts) is read
    /// cold once, and the 21k of a transaction is paid once.
    function settleRound(uint256 taskId, uint256 round, uint256[] calldata indices, address[] calldata validators)
        external
        returns (uint256 settled);

    /// @notice The task's immutable configuration.
    function taskConfig(uint256 taskId) external view returns (TaskConfig memory);

    /// @notice The task's live state.
    function taskState(uint256 taskId) external view returns (TaskState memory);

    /// @notice The task's escrow: not yet assigned (`remaining`) and assigned to unsettled payouts (`reserved`).
    function fundsOf(uint256 taskId) external view returns (uint256 remaining, uint256 reserved);

    /// @notice The base checkpoint hash of the current round (after the last round: of the final model).
    function baseModelOf(uint256 taskId) external view returns (bytes32);

    /// @notice `account`'s role in `taskId` and its first round.
    function participantOf(uint256 taskId, address account) external view returns (Role role, uint256 fromRound);

    /// @notice Submission `index` of `round`.
    function submissionOf(uint256 taskId, uint256 round, uint256 index)
        external
        view
        returns (address trainer, uint256 workUnits, bool settled);

    /// @notice Rate per work unit and validator share of a finalised round, and whether the round had a
    /// ballot (its seed was drawn).
    function roundResultOf(uint256 taskId, uint256 round)
        external
        view
        returns (uint256 rate, uint256 validatorShare, bool hadBallot);

    /// @notice The seed of `round` (zero until drawn).
    function seedOf(uint256 taskId, uint256 round) external view returns (bytes32);

    /// @notice Number of trainers active in `round`.
    function activeTrainers(uint256 taskId, uint256 round) external view returns (uint256);

    /// @notice Whether `validator` is settled for `round`.
    function validatorSettled(uint256 taskId, uint256 round, address validator) external view returns (bool);

    /// @notice Until when `staker`'s allocation to `taskId` is locked: 0 if it never joined the task;
    /// type(uint256).max while the task is active, while the staker is a trainer with a submission or (when
    /// no-shows are slashed) a no-show not yet settled ({unsettledOf}, {noShowsOf}), or while it is a validator with a round it was expected in that is not yet
    /// settled ({validatorUnsettledOf}): a participant frees its stake by settling its own part, its own
    /// slashes included, so nobody leaves unslashed because nobody settled it in time. Otherwise, after the
    /// task ended, its end time plus the settlement grace (no grace if it ended before it started).
    function lockedUntil(uint256 taskId, address staker) external view returns (uint256);

    /// @notice Number of `trainer`'s submissions to `taskId` not settled yet.
    function unsettledOf(uint256 taskId, address trainer) external view returns (uint256);

    /// @notice `trainer`'s no-shows: those not settled yet (after the task ended, they keep its allocation
    /// locked), the finalised rounds it missed in a row since it last submitted (or joined), and whether it
    /// still holds its seat (false once freed; false for an account that is not a trainer of the task).
    function noShowsOf(uint256 taskId, address trainer)
        external
        view
        returns (uint256 unsettled, uint256 missedInARow, bool seated);

    /// @notice Number of finalised rounds of `taskId` in which `validator` was expected (a ballot opened and
    /// its first round had come, see {IAttestationRegistry-validatorOutcome}) and that {settleValidator} has
    /// not settled yet; 0 for an account that is not a validator of the task. After the task ended, its
    /// allocation stays locked while this is not 0 (the current round, whose ballot may be open, is not
    /// finalised and not counted; every round is finalised once the task has ended).
    /// @dev O(1): {IAttestationRegistry-expectedRoundsOf} minus the open round minus the validator's
    /// settlements.
    function validatorUnsettledOf(uint256 taskId, address validator) external view returns (uint256);

    /// @notice `validator`'s allocation to `taskId` and the task's minimum validator stake (what
    /// {IAttestationRegistry-revealVerdicts} requires).
    function validatorStakeOf(uint256 taskId, address validator)
        external
        view
        returns (uint256 allocated, uint256 required);

    /// @notice Number of tasks created; ids run from 1 to this.
    function taskCount() external view returns (uint256);

    /// @notice Seconds an allocation stays locked after its task ended.
    function settlementGrace() external view returns (uint256);

    /// @notice The deployment's ERC20.
    function token() external view returns (address);

    /// @notice The StakeManager of this deployment.
    function stakeManager() external view returns (address);

    /// @notice The RewardDistributor of this deployment.
    function rewardDistributor() external view returns (address);

    /// @notice The AttestationRegistry of this deployment.
    function attestationRegistry() external view returns (address);
}
