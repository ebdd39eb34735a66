// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title IAttestationRegistry
/// @notice Per-round commit-reveal of validators' verdict vectors, two-thirds counting, and commit-reveal
/// model-hash votes.
///
/// A round's ballot opens when the TaskEscrow draws the round's seed. Phases, each with a hard deadline
/// fixed at opening and each closing early once everyone expected has acted:
/// commit (until `commitEnd`; early when every expected validator committed), reveal (from the commit's end
/// until `revealEnd`; early when every committer revealed), vote commit (from the reveal's end until
/// `voteCommitEnd`; early when every revealer committed a vote), vote reveal (from the vote commit's end
/// until `voteEnd`; early when every vote committer revealed its vote). The escrow's vote window (from
/// the reveal deadline to `voteEnd`) is split in two at opening: the vote commit's deadline is its
/// middle (rounded up). A stored end is the deadline, or the time of the transaction that closed the
/// phase early. A phase with nobody to act (no committer, no revealer) is closed as soon as the previous
/// one is.
///
/// Verdict vector: 2 bits per submission index i at bits [2i, 2i+2) of a uint256 (so at most 128
/// submissions): 1 ACCEPT, 2 REJECT, 3 UNAVAILABLE; every index below the round's submission count must
/// carry a verdict and every bit above must be zero. Commitment:
/// `keccak256(abi.encode(uint256 taskId, uint256 round, address validator, uint256 verdicts, bytes32 salt))`.
/// Model vote commitment: `keccak256(abi.encode(uint256 taskId, uint256 round, address validator,
/// bytes32 modelHash, bytes32 keccak256(bytes(modelCid)), bytes32 salt))`: nobody can copy a vote before
/// the vote commit closes, and the revealed CID is the committed one.
///
/// Payment: a validator's round share is paid ({validatorOutcome}'s `agreed`) only if its verdicts agree
/// with every decided outcome, the round agreed on a model, and it revealed a vote for that model.
///
/// Committees (the task's `committeeDraws` k > 0): validator j holds the interval [offset_j, offset_j +
/// weight_j) of the line of weights, laid out in registration order (weight: its allocation at the join in
/// units of the task's minimum validator stake). The validators active in round r are a prefix of that
/// order, of total weight W_r. For submission i, draw d (0 <= d < k) is the point
/// `x = uint64(uint256(keccak256(abi.encode(seed, i, d / 4))) >> (64 * (d % 4))) % W_r` with the round's
/// seed; the validator whose interval holds x gets the draw, and its multiplicity m_ij on submission i is
/// the number of draws it got. A verdict vector then carries a verdict exactly in the fields where
/// m_ij > 0 (0 elsewhere), its verdicts count m_ij each, its model vote counts sum_i m_ij, and it is paid
/// per draw. With k == 0 every active validator has m_ij = 1 on every submission.
///
/// Decision of a submission: the verdict v with `3 * count(v) >= 2 * n`, where n is the number of
/// revealed verdicts on it (the revealed draws on it, with committees), provided `n >= quorum`; otherwise
/// undecided (0). Every reveal updates the tallies
/// and every decision: O(submissions), the same work for every reveal of the round whatever their order
/// (so a gas limit estimated in one position holds in any other). The decisions are stored per round (64
/// per slot): settling a submission or a validator reads them in O(1).
interface IAttestationRegistry {
    /// @notice A validator's verdict on one submission (0 also means "undecided" for a decision).
    enum Verdict {
        None,
        Accept,
        Reject,
        Unavailable
    }

    /// @notice Where a round's ballot stands at a given time.
    enum Phase {
        NotOpen,
        Commit,
        Reveal,
        VoteCommit,
        VoteReveal,
        Closed
    }

    /// @notice A round's ballot (one storage slot).
    /// @param commitEnd end of the commit phase (deadline, or the early close)
    /// @param revealEnd end of the reveal phase (deadline, or the early close)
    /// @param voteCommitEnd end of the model vote commit (deadline, or the early close)
    /// @param voteEnd end of the model vote reveal (deadline, or the early close)
    /// @param submissions number of submissions of the round (length of the verdict vectors)
    /// @param expected validators active in the round
    /// @param committed, revealed, voteCommitted, voted counts of validators (voted: revealed model votes)
    /// @param quorum minimum revealed votes for any decision
    /// @param agreed whether a model hash reached two thirds
    /// @param draws the task's committee draws k per submission (0: every active validator judges every
    /// submission with weight 1)
    /// @param revealedWeight with draws > 0, the draws held by the validators that revealed (the sum of their
    /// multiplicities over the round's submissions; 0 with draws == 0, where `revealed` is the weight)
    struct Ballot {
        uint40 commitEnd;
        uint40 revealEnd;
        uint40 voteCommitEnd;
        uint40 voteEnd;
        uint8 submissions;
        uint8 expected;
        uint8 committed;
        uint8 revealed;
        uint8 voteCommitted;
        uint8 voted;
        uint8 quorum;
        bool agreed;
        uint8 draws;
        uint24 revealedWeight;
    }

    /// @notice Round `round` of `taskId` opened for verdicts.
    event VotingOpened(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 submissions,
        uint256 expectedValidators,
        uint256 quorum,
        uint256 commitDeadline,
        uint256 revealDeadline,
        uint256 voteDeadline
    );

    /// @notice `validator` committed to a verdict vector.
    event VerdictsCommitted(
        uint256 indexed taskId, uint256 indexed round, address indexed validator, bytes32 commitment
    );

    /// @notice `validator` revealed its verdict vector and salt (they hash to its commitment).
    event VerdictsRevealed(
        uint256 indexed taskId, uint256 indexed round, address indexed validator, uint256 verdicts, bytes32 salt
    );

    /// @notice `validator` committed to a model vote.
    event ModelVoteCommitted(
        uint256 indexed taskId, uint256 indexed round, address indexed validator, bytes32 commitment
    );

    /// @notice `validator` revealed its vote: the sha256 of the next global checkpoint (the CID locates it) and
    /// the salt (they hash to its {ModelVoteCommitted} commitment).
    event ModelVoted(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed validator,
        bytes32 modelHash,
        string modelCid,
        bytes32 salt
    );

    /// @notice `modelHash` reached two thirds of the revealed validators' weight (and the quorum) with `votes`.
    event ModelAgreed(uint256 indexed taskId, uint256 indexed round, bytes32 modelHash, string modelCid, uint256 votes);

    /// @notice Only the TaskEscrow of this deployment may call this function.
    error OnlyTaskEscrow(address caller);

    /// @notice The ballot of `round` has not been opened (its seed was not drawn).
    error VotingNotOpen(uint256 taskId, uint256 round);

    /// @notice The commit phase ended at `commitEnd` (`timestamp` is now).
    error CommitPhaseClosed(uint256 taskId, uint256 round, uint256 commitEnd, uint256 timestamp);

    /// @notice `account` is not a validator of `taskId` active in `round`.
    error NotValidator(uint256 taskId, uint256 round, address account);

    /// @notice `validator` already committed in this round (verdicts, or a model vote).
    error AlreadyCommitted(uint256 taskId, uint256 round, address validator);

    /// @notice A commitment or model hash of zero is not allowed.
    error ZeroHash();

    /// @notice The reveal phase is not open: it opens at `opensAt`, closes at `closesAt` (or closed early
    /// once every committer revealed); `timestamp` is now.
    error RevealPhaseNotOpen(uint256 taskId, uint256 round, uint256 opensAt, uint256 closesAt, uint256 timestamp);

    /// @notice `validator` has no commitment in this round (verdicts for a reveal, a vote for a vote).
    error NotCommitted(uint256 taskId, uint256 round, address validator);

    /// @notice `validator` already revealed in this round.
    error AlreadyRevealed(uint256 taskId, uint256 round, address validator);

    /// @notice The revealed values hash to `computed`, not to the stored `committed` (a stored model vote
    /// commitment has its lowest bit set: `computed` matches it when equal but for that bit).
    error CommitmentMismatch(bytes32 committed, bytes32 computed);

    /// @notice `verdicts` lacks a verdict for an index below `submissions` or sets bits above them.
    error MalformedVerdicts(uint256 verdicts, uint256 submissions);

    /// @notice The model vote commit is not open: it opens when the reveal phase ends and closes at
    /// `closesAt` (or early once every revealer committed a vote); `timestamp` is now.
    error VoteCommitPhaseNotOpen(uint256 taskId, uint256 round, uint256 closesAt, uint256 timestamp);

    /// @notice The model vote reveal is not open: it opens when the vote commit ends (at `opensAt`, or
    /// earlier once every revealer committed) and closes at `closesAt` (or early once every vote committer
    /// revealed); `timestamp` is now.
    error VotePhaseNotOpen(uint256 taskId, uint256 round, uint256 opensAt, uint256 closesAt, uint256 timestamp);

    /// @notice `validator` did not reveal its verdicts in this round, so it may not vote on the model.
    error NotRevealed(uint256 taskId, uint256 round, address validator);

    /// @notice `validator` already revealed its model vote of this round.
    error AlreadyVoted(uint256 taskId, uint256 round, address validator);

    /// @notice The task already has `maxValidators` validators.
    error TooManyValidators(uint256 taskId, uint256 maxValidators);

    /// @notice `validator` is already registered for `taskId`.
    error AlreadyRegistered(uint256 taskId, address validator);

    /// @notice The ballot of `round` is already open.
    error VotingAlreadyOpen(uint256 taskId, uint256 round);

    /// @notice `account` has `allocated` allocated to the task, below the minimum validator stake `required`
    /// (same error as the TaskEscrow's).
    error StakeTooLow(uint256 taskId, address account, uint256 allocated, uint256 required);

    /// @notice Commit to a verdict vector for `round` (commit phase, active validators only).
    function commitVerdicts(uint256 taskId, uint256 round, bytes32 commitment) external;

    /// @notice Reveal the committed verdict vector and salt (reveal phase). The validator's allocation to the
    /// task must still be at least the task's minimum validator stake ({StakeTooLow} otherwise): one slashed
    /// below it must top its allocation up first, or it is treated as a non-revealer (no say in the
    /// decisions, no share, slashed when settled). The check is here and not at the commit, which is
    /// pointless without a reveal and has the tighter gas budget.
    /// @dev Updates the tallies and every submission's decision: O(submissions), the same slots and
    /// arithmetic for every reveal of the round, whatever its place in the order.
    function revealVerdicts(uint256 taskId, uint256 round, uint256 verdicts, bytes32 salt) external;

    /// @notice Commit to a model vote (vote commit phase, validators that revealed their verdicts, once).
    /// Without a revealed vote for the agreed model, the validator's share of the round is forfeited.
    /// @dev O(1); every commit of a round writes the same slots, whatever its place in the order.
    function commitModelVote(uint256 taskId, uint256 round, bytes32 commitment) external;

    /// @notice Reveal the committed model vote: the sha256 of the next global checkpoint, its CID and the
    /// salt (vote reveal phase, validators that committed a vote, once). The hash that first reaches the
    /// quorum and two thirds of the validators that revealed verdicts is the round's model ({ModelAgreed}).
    function voteModel(uint256 taskId, uint256 round, bytes32 modelHash, string calldata modelCid, bytes32 salt)
        external;

    /// @notice Register `validator` for `taskId`, active from `fromRound` on (only the TaskEscrow), with its
    /// allocation to the task `allocated`: its committee weight is `allocated / unit` (at least 1, at most
    /// 2^56), `unit` being the task's minimum validator stake (weight 1 when it is 0).
    /// @return index The validator's index within the task (join order).
    function registerValidator(
        uint256 taskId,
        address validator,
        uint256 fromRound,
        uint256 maxValidators,
        uint256 allocated,
        uint256 unit
    ) external returns (uint256 index);

    /// @notice Open the ballot of `round` with the given deadlines and the round's seed (only the TaskEscrow,
    /// when the seed is drawn). With committees, stores the seed and the active weight W_r.
    function openRound(
        uint256 taskId,
        uint256 round,
        uint256 submissions,
        uint256 quorum,
        uint256 commitDeadline,
        uint256 revealDeadline,
        uint256 voteDeadline,
        bytes32 seed
    ) external;

    /// @notice Prepare the task's storage (only the TaskEscrow, at task creation): the tallies of up to
    /// `maxSubmissions` submissions, reused by every round, and the committee draws per submission `draws`
    /// (0: no committees). O(maxSubmissions), paid once by the initiator.
    function initTask(uint256 taskId, uint256 maxSubmissions, uint256 draws) external;

    /// @notice The round's ballot; all zero if it never opened.
    function ballotOf(uint256 taskId, uint256 round) external view returns (Ballot memory);

    /// @notice The phase of `round`'s ballot now.
    function phaseOf(uint256 taskId, uint256 round) external view returns (Phase);

    /// @notice What the escrow needs to finalize `round`: whether the ballot is closed (the model vote is
    /// over), the revealed weight (the number of revealed validators without committees, their draws with
    /// them), the agreed model hash if any, and the decisions (packed
    /// like a verdict vector, 0 = undecided).
    /// @dev `winner` is meaningful only while `round` is the task's latest ballot (the escrow reads it when it
    /// finalizes that round); afterwards see the escrow's RoundFinalized events.
    function outcome(uint256 taskId, uint256 round)
        external
        view
        returns (bool closed, uint256 revealed, bool agreed, bytes32 winner, uint256 decisions);

    /// @notice The decision submission `index` of `round` is settled on (0 = undecided). In a deployment
    /// with an AppealCourt it reverts while the round's appeal window is open or an appeal of the submission
    /// is pending, and is the appeal's result once decided ({IAppealCourt-settledDecision}); the ballot's own
    /// decisions are {decisionsOf}.
    function decisionOf(uint256 taskId, uint256 round, uint256 index) external view returns (Verdict);

    /// @notice All current decisions of `round`, packed like a verdict vector (0 = undecided).
    function decisionsOf(uint256 taskId, uint256 round) external view returns (uint256);

    /// @notice The counts of ACCEPT, REJECT and UNAVAILABLE verdicts revealed for submission `index`, while
    /// `round` is the task's latest ballot (the tallies are reused by the next round's ballot; zeros for an
    /// earlier round, and before the round's first reveal). The decisions stay ({decisionsOf}).
    function tallyOf(uint256 taskId, uint256 round, uint256 index)
        external
        view
        returns (uint256 accepts, uint256 rejects, uint256 unavailables);

    /// @notice `validator`'s stored word for `round`: its commitment before it reveals, its verdict vector
    /// after (`revealed` tells which).
    function verdictsOf(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (bytes32 word, bool revealed);

    /// @notice How `validator` stands in `round`: active in it, revealed, earned its share, and its weight
    /// in the round. `agreed` (the share is paid) holds when it revealed verdicts that agree with every
    /// decided outcome on its own fields, the round agreed on a model, and it revealed a vote for that
    /// model; false otherwise (a round without model agreement pays no validator its share). `weight`: 1
    /// without committees; with committees, its draws in the round (sum of its multiplicities; 0: it was
    /// not drawn, owes nothing and earns nothing). 0 when not expected.
    /// In a deployment with an AppealCourt, `agreed` is judged against the decisions as the round's appeals
    /// left them, and the call reverts while the round's appeal window is open, an appeal of the round is
    /// pending, or the round has appeals and `validator` is not settled by the court
    /// ({IAppealCourt-validatorGate}).
    /// @dev With committees O(submissions x draws) (the draws are recomputed).
    function validatorOutcome(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (bool expected, bool revealed, bool agreed, uint256 weight);

    /// @notice The task's committee draws per submission (0: no committees), the seed and the active weight
    /// W_r of `round` (both 0 without committees or before the ballot opens).
    function committeeOf(uint256 taskId, uint256 round)
        external
        view
        returns (uint256 draws, bytes32 seed, uint256 totalWeight);

    /// @notice `validator`'s place on the line of weights, [offset, offset + weight), if it is active in
    /// `round` (else 0, 0), and the weight W_r of the validators active in it (stored when its ballot
    /// opened, with committees or an AppealCourt; else 0): what the AppealCourt draws on.
    function lineOf(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (uint256 offset, uint256 weight, uint256 totalWeight);

    /// @notice The deployment's AppealCourt (zero: none).
    function appealCourt() external view returns (address);

    /// @notice `validator`'s place on the line of weights: [offset, offset + weight).
    function weightOf(uint256 taskId, address validator) external view returns (uint256 offset, uint256 weight);

    /// @notice `validator`'s multiplicities in `round`, packed 8 bits per submission (byte i: m_i), and
    /// their sum. Without committees, 1 on every submission for an active validator.
    function multiplicitiesOf(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (uint256[4] memory multiplicities, uint256 weight);

    /// @notice Whether `validator` committed a model vote in `round`, and whether it revealed it (the hash
    /// it voted is in its {ModelVoted} event).
    function modelVoteOf(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (bool committed, bool revealed);

    /// @notice Number of votes for `modelHash` in `round`.
    function modelVotesOf(uint256 taskId, uint256 round, bytes32 modelHash) external view returns (uint256);

    /// @notice `validator`'s registration: whether registered, its index and its first active round.
    function validatorInfo(uint256 taskId, address validator)
        external
        view
        returns (bool registered, uint256 index, uint256 fromRound);

    /// @notice Number of rounds in which `validator` is expected (see {validatorOutcome}): the rounds from
    /// its first one on whose ballot opened, the current round's included once its seed is drawn; 0 if it
    /// is not registered. Once the task has ended, every one of them is finalised and must be settled
    /// ({ITaskEscrow-settleValidator}) before the validator's allocation is released.
    /// @dev O(1): the task's count of opened ballots minus those opened in rounds before `fromRound`
    /// (snapshotted at registration; the ballot of round `fromRound - 1`, under way at the join, is read
    /// apart because it may open after it).
    function expectedRoundsOf(uint256 taskId, address validator) external view returns (uint256);

    /// @notice Number of rounds of `taskId` whose ballot opened (whose seed was drawn).
    function ballotsOpened(uint256 taskId) external view returns (uint256);

    /// @notice Number of validators active in `round` (registered with a first round <= `round`).
    /// @dev Exact only for the task's current round and later ones: validators that joined after `round`
    /// may be counted for an earlier one. For a past round with a ballot, read `ballotOf(...).expected`.
    function expectedValidators(uint256 taskId, uint256 round) external view returns (uint256);

    /// @notice The commitment a validator must send: keccak256(abi.encode(taskId, round, validator,
    /// verdicts, salt)).
    function commitmentFor(uint256 taskId, uint256 round, address validator, uint256 verdicts, bytes32 salt)
        external
        pure
        returns (bytes32);

    /// @notice The model vote commitment a validator must send: keccak256(abi.encode(taskId, round,
    /// validator, modelHash, keccak256(bytes(modelCid)), salt)).
    function voteCommitmentFor(
        uint256 taskId,
        uint256 round,
        address validator,
        bytes32 modelHash,
        string calldata modelCid,
        bytes32 salt
    ) external pure returns (bytes32);

    /// @notice The TaskEscrow of this deployment.
    function taskEscrow() external view returns (address);
}
