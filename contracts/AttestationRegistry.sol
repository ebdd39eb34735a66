// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAppealCourt} from "./interfaces/IAppealCourt.sol";
import {IAttestationRegistry} from "./interfaces/IAttestationRegistry.sol";
import {ITaskEscrow} from "./interfaces/ITaskEscrow.sol";
import {Cohort} from "./Cohort.sol";

/// @title AttestationRegistry
/// @notice Commit-reveal of verdict vectors, incremental two-thirds counting, commit-reveal model-hash votes.
///
/// Storage. Per task, reused by every round: the tallies (three 8-bit counters per submission, ten
/// submissions per slot, a marker bit so that no slot is ever zero), written with markers for `maxTrainers`
/// submissions when the task is created; the first reveal of a round starts them from zero. Per round:
/// the ballot (one slot), the revealed-validators bitmap (one slot, bit = validator index), the decisions
/// (2 bits per submission, 64 submissions per slot, with a marker and a stamp of the number of reveals),
/// one word per validator (its commitment, overwritten by its verdict vector when it reveals), and one per
/// validator that votes on the model (its vote commitment with the lowest bit set, overwritten when it
/// reveals by the vote's tag: keccak256 of the model hash with the lowest bit cleared, so a commitment is
/// never taken for a revealed vote; the model votes are counted by tag).
/// Opening a round writes the bitmap and the decision slots with markers: no slot a reveal writes is ever
/// zero, so every reveal of a round reads and writes the same slots at the same price, whatever its place
/// in the order (the stamp changes every decision slot at every reveal).
///
/// Committees (k = the task's draws > 0): per task, the line of weights (a Cohort-like counter of the
/// weight registered, one slot with k); per validator, its interval on the line (in its record); per
/// round, the seed and the active weight W_r (two slots, written when the round opens) and the revealed
/// weight (in the ballot). A validator's multiplicities are recomputed from them wherever they are needed
/// (reveal, model vote, settlement): O(submissions x k) hashing and arithmetic, no storage and no search.
///
/// Appeals (a deployment with an AppealCourt): the line of weights is kept for every task (k = 0 too) and
/// W_r stored when a round opens, for the court's draws ({lineOf}); {decisionOf} and {validatorOutcome},
/// what the escrow settles on, consult the court (see {IAppealCourt-settledDecision}).
contract AttestationRegistry is IAttestationRegistry {
    // slither-disable-start timestamp
    // (the phases are deadlines in block.timestamp by design: a proposer's seconds of skew move none of them
    // meaningfully; slither also counts comparisons of other fields of structs that hold a time)
    using Cohort for Cohort.Counter;

    uint256 private constant _MARKER = 1 << 255;
    uint256 private constant _PER_SLOT = 10;
    uint256 private constant _TALLY_BITS = 24;
    uint256 private constant _COUNT_MASK = 0xff;
    uint256 private constant _DECISIONS_PER_SLOT = 64;
    uint256 private constant _DECISION_MASK = (1 << 128) - 1;
    uint256 private constant _STAMP_SHIFT = 128;
    /// @dev A validator's weight is capped so that 255 of them sum below 2^64.
    uint256 private constant _MAX_WEIGHT = 1 << 56;
    /// @dev Every byte 1: the multiplicities of an active validator without committees.
    uint256 private constant _ONES = 0x0101010101010101010101010101010101010101010101010101010101010101;
    /// @dev The low bit of every 2-bit field of a verdict or decision vector.
    uint256 private constant _LOW_BITS = 0x5555555555555555555555555555555555555555555555555555555555555555;
    /// @dev Winner slot placeholder written at task creation so the agreeing vote rewrites a nonzero slot.
    bytes32 private constant _NO_WINNER = bytes32(uint256(1));
    /// @dev The lowest bit of a model vote word: set in a stored commitment, clear in a revealed vote's tag.
    bytes32 private constant _COMMITTED_BIT = bytes32(uint256(1));

    /// @param ballotsBefore ballots opened, when the validator joined, in the rounds before `fromRound - 1`
    /// (those rounds were finalised by then; round `fromRound - 1`, the one under way, may open its ballot
    /// after the join, so {expectedRoundsOf} looks at it separately)
    /// @param offset, weight the validator's interval [offset, offset + weight) on the task's line of weights
    struct ValidatorRecord {
        bool registered;
        uint8 index;
        uint32 fromRound;
        uint32 ballotsBefore;
        uint64 offset;
        uint64 weight;
    }

    /// @notice A task's committee draws k and its line of weights, counted like a {Cohort}: `active` is the
    /// weight of the validators whose first round is at most the current round, `pending` that of those
    /// whose first round is `pendingFrom` (the line is kept only when k > 0).
    struct Pool {
        uint8 draws;
        uint64 active;
        uint64 pending;
        uint32 pendingFrom;
    }

    /// @notice A round's draws: its seed and the weight W_r of the validators active in it.
    struct RoundDraw {
        bytes32 seed;
        uint64 totalWeight;
    }

    address private immutable _escrow;
    IAppealCourt private immutable _court;

    mapping(uint256 taskId => mapping(uint256 round => Ballot)) private _ballots;
    mapping(uint256 taskId => mapping(uint256 round => uint256 bitmap)) private _revealedBitmaps;
    mapping(uint256 taskId => mapping(uint256 slot => uint256 counts)) private _tallies;
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 slot => uint256 decisions))) private _decided;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address validator => bytes32 word))) private _words;
    mapping(uint256 taskId => mapping(uint256 round => mapping(bytes32 tag => uint256 votes))) private _modelVotes;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address validator => bytes32 word))) private _votes;
    mapping(uint256 taskId => mapping(address validator => ValidatorRecord)) private _validators;
    mapping(uint256 taskId => Cohort.Counter) private _cohorts;
    mapping(uint256 taskId => bytes32 modelHash) private _winners;
    mapping(uint256 taskId => Pool) private _pools;
    mapping(uint256 taskId => mapping(uint256 round => RoundDraw)) private _roundDraws;

    /// @param escrow_ the TaskEscrow (its address may be computed before it is deployed)
    /// @param court_ the AppealCourt (likewise; zero: a deployment without appeals)
    constructor(address escrow_, IAppealCourt court_) {
        // slither-disable-next-line missing-zero-check computed from the deployer's nonce, checked by deploy_protocol
        _escrow = escrow_;
        _court = court_;
    }

    modifier onlyEscrow() {
        if (msg.sender != _escrow) revert OnlyTaskEscrow(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- validators

    /// @inheritdoc IAttestationRegistry
    function commitVerdicts(uint256 taskId, uint256 round, bytes32 commitment) external {
        if (commitment == 0) revert ZeroHash();
        Ballot storage ballot = _ballots[taskId][round];
        Ballot memory b = ballot;
        if (b.commitEnd == 0) revert VotingNotOpen(taskId, round);
        if (block.timestamp >= b.commitEnd) revert CommitPhaseClosed(taskId, round, b.commitEnd, block.timestamp);
        ValidatorRecord memory v = _validators[taskId][msg.sender];
        if (!v.registered || v.fromRound > round) revert NotValidator(taskId, round, msg.sender);
        mapping(address => bytes32) storage words = _words[taskId][round];
        if (words[msg.sender] != 0) revert AlreadyCommitted(taskId, round, msg.sender);

        words[msg.sender] = commitment;
        // Only the `expected` (<= 255) validators active in the round can commit, once each.
        unchecked {
            b.committed += 1;
        }
        ballot.committed = b.committed;
        if (b.committed == b.expected) ballot.commitEnd = uint40(block.timestamp);
        emit VerdictsCommitted(taskId, round, msg.sender, commitment);
    }

    /// @inheritdoc IAttestationRegistry
    function revealVerdicts(uint256 taskId, uint256 round, uint256 verdicts, bytes32 salt) external {
        Ballot storage ballot = _ballots[taskId][round];
        Ballot memory b = ballot;
        if (b.commitEnd == 0) revert VotingNotOpen(taskId, round);
        if (block.timestamp < b.commitEnd || block.timestamp >= b.revealEnd) {
            revert RevealPhaseNotOpen(taskId, round, b.commitEnd, b.revealEnd, block.timestamp);
        }
        bytes32 stored = _words[taskId][round][msg.sender];
        if (stored == 0) revert NotCommitted(taskId, round, msg.sender);
        ValidatorRecord memory v = _validators[taskId][msg.sender];
        uint256 bit = 1 << v.index;
        uint256 bitmap = _revealedBitmaps[taskId][round];
        if (bitmap & bit != 0) revert AlreadyRevealed(taskId, round, msg.sender);
        bytes32 computed = keccak256(abi.encode(taskId, round, msg.sender, verdicts, salt));
        if (computed != stored) revert CommitmentMismatch(stored, computed);
        _requireStake(taskId);

        _words[taskId][round][msg.sender] = bytes32(verdicts);
        _revealedBitmaps[taskId][round] = bitmap | bit;
        uint256 weight = _tally(taskId, round, verdicts, v, b);
        // At most `committed` (<= 255) validators reveal; with committees, at most k (<= 64) draws on each
        // of at most 128 submissions.
        unchecked {
            b.revealed += 1;
            if (b.draws != 0) ballot.revealedWeight = uint24(b.revealedWeight + weight);
        }
        ballot.revealed = b.revealed;
        if (b.revealed == b.committed) ballot.revealEnd = uint40(block.timestamp);
        emit VerdictsRevealed(taskId, round, msg.sender, verdicts, salt);
    }

    /// @inheritdoc IAttestationRegistry
    function commitModelVote(uint256 taskId, uint256 round, bytes32 commitment) external {
        if (commitment == 0) revert ZeroHash();
        Ballot storage ballot = _ballots[taskId][round];
        Ballot memory b = ballot;
        if (b.commitEnd == 0) revert VotingNotOpen(taskId, round);
        if (!_revealClosed(b) || _voteCommitClosed(b)) {
            revert VoteCommitPhaseNotOpen(taskId, round, b.voteCommitEnd, block.timestamp);
        }
        if (!_hasRevealed(taskId, round, msg.sender)) revert NotRevealed(taskId, round, msg.sender);
        mapping(address => bytes32) storage votes_ = _votes[taskId][round];
        if (votes_[msg.sender] != 0) revert AlreadyCommitted(taskId, round, msg.sender);

        votes_[msg.sender] = commitment | _COMMITTED_BIT;
        // Only validators that revealed (<= 255) commit a vote, once each.
        unchecked {
            b.voteCommitted += 1;
        }
        ballot.voteCommitted = b.voteCommitted;
        if (b.voteCommitted == b.revealed) ballot.voteCommitEnd = uint40(block.timestamp);
        emit ModelVoteCommitted(taskId, round, msg.sender, commitment);
    }

    /// @inheritdoc IAttestationRegistry
    function voteModel(uint256 taskId, uint256 round, bytes32 modelHash, string calldata modelCid, bytes32 salt)
        external
    {
        if (modelHash == 0) revert ZeroHash();
        Ballot storage ballot = _ballots[taskId][round];
        Ballot memory b = ballot;
        if (b.commitEnd == 0) revert VotingNotOpen(taskId, round);
        if (!_revealClosed(b) || !_voteCommitClosed(b) || block.timestamp >= b.voteEnd) {
            revert VotePhaseNotOpen(taskId, round, b.voteCommitEnd, b.voteEnd, block.timestamp);
        }
        mapping(address => bytes32) storage votes_ = _votes[taskId][round];
        bytes32 stored = votes_[msg.sender];
        if (stored == 0) revert NotCommitted(taskId, round, msg.sender);
        if (stored & _COMMITTED_BIT == 0) revert AlreadyVoted(taskId, round, msg.sender);
        bytes32 computed = _voteCommitment(taskId, round, msg.sender, modelHash, keccak256(bytes(modelCid)), salt);
        if (computed | _COMMITTED_BIT != stored) revert CommitmentMismatch(stored, computed);

        uint256 votes = _addVote(taskId, round, modelHash, b);
        // Only validators that committed a vote (<= 255) reveal it, once each.
        unchecked {
            b.voted += 1;
        }
        ballot.voted = b.voted;
        if (b.voted == b.voteCommitted) ballot.voteEnd = uint40(block.timestamp);
        emit ModelVoted(taskId, round, msg.sender, modelHash, modelCid, salt);
        if (!b.agreed && _wins(votes, b)) {
            ballot.agreed = true;
            _winners[taskId] = modelHash;
            emit ModelAgreed(taskId, round, modelHash, modelCid, votes);
        }
    }

    // ---------------------------------------------------------------- escrow

    /// @inheritdoc IAttestationRegistry
    function initTask(uint256 taskId, uint256 maxSubmissions, uint256 draws) external onlyEscrow {
        _winners[taskId] = _NO_WINNER;
        if (draws != 0) _pools[taskId].draws = uint8(draws);
        mapping(uint256 => uint256) storage tallies = _tallies[taskId];
        for (uint256 slot = 0; slot * _PER_SLOT < maxSubmissions; ++slot) {
            tallies[slot] = _MARKER;
        }
    }

    /// @inheritdoc IAttestationRegistry
    function registerValidator(
        uint256 taskId,
        address validator,
        uint256 fromRound,
        uint256 maxValidators,
        uint256 allocated,
        uint256 unit
    ) external onlyEscrow returns (uint256 index) {
        ValidatorRecord storage record = _validators[taskId][validator];
        if (record.registered) revert AlreadyRegistered(taskId, validator);
        Cohort.Counter storage cohort = _cohorts[taskId];
        index = cohort.total();
        if (index >= maxValidators) revert TooManyValidators(taskId, maxValidators);
        uint256 ballotsBefore = cohort.ballots;
        cohort.add(fromRound);
        // Every ballot opened so far is in a round <= fromRound - 1, the current one (a ballot opened, so
        // the task started and fromRound >= 1); leave that round's out: expectedRoundsOf counts it apart,
        // whether it opens before or after this join.
        if (ballotsBefore != 0 && _ballots[taskId][fromRound - 1].commitEnd != 0) {
            unchecked {
                ballotsBefore -= 1;
            }
        }
        record.registered = true;
        record.index = uint8(index);
        record.fromRound = uint32(fromRound);
        record.ballotsBefore = uint32(ballotsBefore);
        Pool storage pool = _pools[taskId];
        if (pool.draws != 0 || address(_court) != address(0)) {
            uint256 weight = unit == 0 ? 1 : allocated / unit;
            if (weight == 0) weight = 1;
            if (weight > _MAX_WEIGHT) weight = _MAX_WEIGHT;
            record.weight = uint64(weight);
            record.offset = _addWeight(pool, fromRound, weight);
        }
    }

    /// @inheritdoc IAttestationRegistry
    function openRound(
        uint256 taskId,
        uint256 round,
        uint256 submissions,
        uint256 quorum,
        uint256 commitDeadline,
        uint256 revealDeadline,
        uint256 voteDeadline,
        bytes32 seed
    ) external onlyEscrow {
        Ballot storage ballot = _ballots[taskId][round];
        if (ballot.commitEnd != 0) revert VotingAlreadyOpen(taskId, round);
        Cohort.Counter storage cohort = _cohorts[taskId];
        uint256 expected = cohort.activeAt(round);
        cohort.markBallot(round);
        // With no validator to wait for, the commit phase is over at once (and so are the others).
        ballot.commitEnd = uint40(expected == 0 ? block.timestamp : commitDeadline);
        ballot.revealEnd = uint40(revealDeadline);
        // The escrow's vote window, split in two: the vote commit gets the first half (rounded up), the
        // vote reveal the rest.
        ballot.voteCommitEnd = uint40(revealDeadline + (voteDeadline - revealDeadline + 1) / 2);
        ballot.voteEnd = uint40(voteDeadline);
        ballot.submissions = uint8(submissions);
        ballot.expected = uint8(expected);
        ballot.quorum = uint8(quorum);
        Pool memory pool = _pools[taskId];
        if (pool.draws != 0 || address(_court) != address(0)) {
            RoundDraw storage draw = _roundDraws[taskId][round];
            if (pool.draws != 0) {
                ballot.draws = pool.draws;
                draw.seed = seed;
            }
            draw.totalWeight = pool.pendingFrom <= round ? pool.active + pool.pending : pool.active;
        }
        _revealedBitmaps[taskId][round] = _MARKER;
        mapping(uint256 => uint256) storage decided = _decided[taskId][round];
        decided[0] = _MARKER;
        if (submissions > _DECISIONS_PER_SLOT) decided[1] = _MARKER;
        emit VotingOpened(taskId, round, submissions, expected, quorum, commitDeadline, revealDeadline, voteDeadline);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IAttestationRegistry
    function ballotOf(uint256 taskId, uint256 round) external view returns (Ballot memory) {
        return _ballots[taskId][round];
    }

    /// @inheritdoc IAttestationRegistry
    function phaseOf(uint256 taskId, uint256 round) external view returns (Phase) {
        Ballot memory b = _ballots[taskId][round];
        // slither-disable-next-line incorrect-equality commitEnd == 0 is the never-opened marker, not a time
        if (b.commitEnd == 0) return Phase.NotOpen;
        if (block.timestamp < b.commitEnd) return Phase.Commit;
        if (!_revealClosed(b)) return Phase.Reveal;
        if (!_voteCommitClosed(b)) return Phase.VoteCommit;
        if (!_voteClosed(b)) return Phase.VoteReveal;
        return Phase.Closed;
    }

    /// @inheritdoc IAttestationRegistry
    function outcome(uint256 taskId, uint256 round)
        external
        view
        returns (bool closed, uint256 revealed, bool agreed, bytes32 winner, uint256 decisions)
    {
        Ballot memory b = _ballots[taskId][round];
        closed = b.commitEnd != 0 && _revealClosed(b) && _voteCommitClosed(b) && _voteClosed(b);
        if (b.agreed) winner = _winners[taskId];
        return (closed, _revealedWeight(b), b.agreed, winner, _decisions(taskId, round, b.submissions));
    }

    /// @inheritdoc IAttestationRegistry
    function decisionOf(uint256 taskId, uint256 round, uint256 index) external view returns (Verdict) {
        Ballot storage b = _ballots[taskId][round];
        if (index >= b.submissions) return Verdict.None;
        uint256 word = _decided[taskId][round][index / _DECISIONS_PER_SLOT];
        uint256 decided = (word >> (2 * (index % _DECISIONS_PER_SLOT))) & 3;
        if (address(_court) == address(0)) return Verdict(decided);
        return _court.settledDecision(taskId, round, index, decided, b.voteEnd);
    }

    /// @inheritdoc IAttestationRegistry
    function decisionsOf(uint256 taskId, uint256 round) external view returns (uint256) {
        return _decisions(taskId, round, _ballots[taskId][round].submissions);
    }

    /// @inheritdoc IAttestationRegistry
    function tallyOf(uint256 taskId, uint256 round, uint256 index)
        external
        view
        returns (uint256 accepts, uint256 rejects, uint256 unavailables)
    {
        Ballot memory b = _ballots[taskId][round];
        // slither-disable-next-line incorrect-equality a count of reveals, not a balance: == is exact
        if (index >= b.submissions || b.revealed == 0 || _cohorts[taskId].lastBallot != round + 1) {
            return (0, 0, 0);
        }
        uint256 counts = _tallies[taskId][index / _PER_SLOT] >> ((index % _PER_SLOT) * _TALLY_BITS);
        return (counts & _COUNT_MASK, (counts >> 8) & _COUNT_MASK, (counts >> 16) & _COUNT_MASK);
    }

    /// @inheritdoc IAttestationRegistry
    function verdictsOf(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (bytes32 word, bool revealed)
    {
        word = _words[taskId][round][validator];
        revealed = _hasRevealed(taskId, round, validator);
    }

    /// @inheritdoc IAttestationRegistry
    function validatorOutcome(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (bool expected, bool revealed, bool agreed, uint256 weight)
    {
        ValidatorRecord memory v = _validators[taskId][validator];
        Ballot memory b = _ballots[taskId][round];
        expected = v.registered && v.fromRound <= round && b.commitEnd != 0;
        if (!expected) return (false, false, false, 0);
        (,, weight) = _committee(taskId, round, v, b);
        revealed = (_revealedBitmaps[taskId][round] >> v.index) & 1 == 1;
        uint256 decisions = _decisions(taskId, round, b.submissions);
        if (address(_court) != address(0)) {
            (uint256 fields, uint256 finals) = _court.validatorGate(taskId, round, validator, b.voteEnd);
            decisions = (decisions & ~fields) | finals;
        }
        if (revealed && b.agreed) {
            uint256 verdicts = uint256(_words[taskId][round][validator]);
            bytes32 vote = _votes[taskId][round][validator];
            agreed = _agrees(verdicts, decisions) && vote & _COMMITTED_BIT == 0 && vote != 0
                && _wins(_modelVotes[taskId][round][vote], b);
        }
    }

    /// @inheritdoc IAttestationRegistry
    function committeeOf(uint256 taskId, uint256 round)
        external
        view
        returns (uint256 draws, bytes32 seed, uint256 totalWeight)
    {
        RoundDraw memory draw = _roundDraws[taskId][round];
        return (_pools[taskId].draws, draw.seed, draw.totalWeight);
    }

    /// @inheritdoc IAttestationRegistry
    function lineOf(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (uint256 offset, uint256 weight, uint256 totalWeight)
    {
        ValidatorRecord memory v = _validators[taskId][validator];
        totalWeight = _roundDraws[taskId][round].totalWeight;
        if (v.registered && v.fromRound <= round) return (v.offset, v.weight, totalWeight);
    }

    /// @inheritdoc IAttestationRegistry
    function appealCourt() external view returns (address) {
        return address(_court);
    }

    /// @inheritdoc IAttestationRegistry
    function weightOf(uint256 taskId, address validator) external view returns (uint256 offset, uint256 weight) {
        ValidatorRecord memory v = _validators[taskId][validator];
        return (v.offset, v.weight);
    }

    /// @inheritdoc IAttestationRegistry
    function multiplicitiesOf(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (uint256[4] memory multiplicities, uint256 weight)
    {
        ValidatorRecord memory v = _validators[taskId][validator];
        Ballot memory b = _ballots[taskId][round];
        if (v.registered && v.fromRound <= round && b.commitEnd != 0) {
            (multiplicities,, weight) = _committee(taskId, round, v, b);
        }
    }

    /// @inheritdoc IAttestationRegistry
    function modelVotesOf(uint256 taskId, uint256 round, bytes32 modelHash) external view returns (uint256) {
        return _modelVotes[taskId][round][_tag(modelHash)];
    }

    /// @inheritdoc IAttestationRegistry
    function modelVoteOf(uint256 taskId, uint256 round, address validator)
        external
        view
        returns (bool committed, bool revealed)
    {
        bytes32 word = _votes[taskId][round][validator];
        return (word != 0, word != 0 && word & _COMMITTED_BIT == 0);
    }

    /// @inheritdoc IAttestationRegistry
    function validatorInfo(uint256 taskId, address validator)
        external
        view
        returns (bool registered, uint256 index, uint256 fromRound)
    {
        ValidatorRecord memory v = _validators[taskId][validator];
        return (v.registered, v.index, v.fromRound);
    }

    /// @inheritdoc IAttestationRegistry
    function expectedRoundsOf(uint256 taskId, address validator) external view returns (uint256) {
        ValidatorRecord memory v = _validators[taskId][validator];
        if (!v.registered) return 0;
        uint256 before = v.ballotsBefore;
        if (v.fromRound != 0 && _ballots[taskId][v.fromRound - 1].commitEnd != 0) before += 1;
        return _cohorts[taskId].ballots - before;
    }

    /// @inheritdoc IAttestationRegistry
    function ballotsOpened(uint256 taskId) external view returns (uint256) {
        return _cohorts[taskId].ballots;
    }

    /// @inheritdoc IAttestationRegistry
    function expectedValidators(uint256 taskId, uint256 round) external view returns (uint256) {
        return _cohorts[taskId].activeAt(round);
    }

    /// @inheritdoc IAttestationRegistry
    function commitmentFor(uint256 taskId, uint256 round, address validator, uint256 verdicts, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, round, validator, verdicts, salt));
    }

    /// @inheritdoc IAttestationRegistry
    function voteCommitmentFor(
        uint256 taskId,
        uint256 round,
        address validator,
        bytes32 modelHash,
        string calldata modelCid,
        bytes32 salt
    ) external pure returns (bytes32) {
        return _voteCommitment(taskId, round, validator, modelHash, keccak256(bytes(modelCid)), salt);
    }

    /// @inheritdoc IAttestationRegistry
    function taskEscrow() external view returns (address) {
        return _escrow;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Checks `verdicts` against the revealer's multiplicities, counts it and stores the round's
    /// decisions after it; returns the revealer's weight.
    function _tally(uint256 taskId, uint256 round, uint256 verdicts, ValidatorRecord memory v, Ballot memory b)
        private
        returns (uint256 weight)
    {
        uint256[4] memory mults;
        uint256 fields;
        (mults, fields, weight) = _committee(taskId, round, v, b);
        _requireWellFormed(verdicts, fields, b.submissions);
        _storeDecisions(taskId, round, b.submissions, _count(taskId, verdicts, mults, b), uint256(b.revealed) + 1);
    }

    /// @dev Adds `verdicts` to the task's tallies, each verdict counted its multiplicity (byte i of `mults`)
    /// times (starting them from zero at the round's first reveal), and returns every submission's decision
    /// after this reveal. Every reveal reads and writes the same tally slots and does the same arithmetic
    /// (the decision is computed without branches), so its gas does not depend on its place among the
    /// round's reveals.
    function _count(uint256 taskId, uint256 verdicts, uint256[4] memory mults, Ballot memory b)
        private
        returns (uint256 decisions)
    {
        uint256 n = b.submissions;
        mapping(uint256 => uint256) storage tallies = _tallies[taskId];
        bool first = b.revealed == 0;
        uint256 quorum = b.quorum;
        // Fewer than 13 slots of ten submissions.
        unchecked {
            for (uint256 start = 0; start < n; start += _PER_SLOT) {
                uint256 stored = tallies[start / _PER_SLOT];
                (uint256 word, uint256 slotDecisions) =
                    _countSlot(first ? _MARKER : stored, verdicts, mults, start, n, quorum);
                tallies[start / _PER_SLOT] = word;
                decisions |= slotDecisions;
            }
        }
    }

    /// @dev Reverts unless `verdicts` holds one verdict (1..3) in every 2-bit field set in `fields` (the
    /// validator's: every field below the submission count `n`, or its drawn ones) and nothing elsewhere.
    function _requireWellFormed(uint256 verdicts, uint256 fields, uint256 n) private pure {
        if (verdicts & ~fields != 0 || (verdicts | (verdicts >> 1)) & _LOW_BITS != fields & _LOW_BITS) {
            revert MalformedVerdicts(verdicts, n);
        }
    }

    /// @dev A validator's multiplicities in the round (byte i: m_i), the 2-bit fields where m_i > 0 (both
    /// bits set) and the sum of the m_i. Without committees: 1 on each of the round's n submissions. (A
    /// shift by 256, n == 128, would yield 0 in the EVM: every field is then in use.)
    function _committee(uint256 taskId, uint256 round, ValidatorRecord memory v, Ballot memory b)
        private
        view
        returns (uint256[4] memory mults, uint256 fields, uint256 weight)
    {
        uint256 n = b.submissions;
        // slither-disable-next-line incorrect-equality a count of draws (0: no committees), not a balance or a time
        if (b.draws == 0) {
            mults = [_ONES, _ONES, _ONES, _ONES];
            // slither-disable-next-line incorrect-equality the submission count, not a balance or a time
            return (mults, n == 128 ? type(uint256).max : (1 << (2 * n)) - 1, 1);
        }
        RoundDraw memory draw = _roundDraws[taskId][round];
        (fields, weight) = _draw(mults, draw.seed, b.draws, draw.totalWeight, v.offset, v.weight, n);
    }

    /// @dev For each submission i < n, counts the draws d < k whose point lies in [lo, lo + width): the
    /// point is the 64-bit chunk d % 4 (the lowest first) of keccak256(abi.encode(seed, i, d / 4)), modulo
    /// `total`. Writes m_i into byte i of `mults`; returns the fields with m_i > 0 and the sum of the m_i.
    function _draw(
        uint256[4] memory mults,
        bytes32 seed,
        uint256 k,
        uint256 total,
        uint256 lo,
        uint256 width,
        uint256 n
    ) private pure returns (uint256 fields, uint256 weight) {
        // slither-disable-next-line assembly the hashing loop in scratch memory, O(n x k), four draws a hash
        assembly ("memory-safe") {
            let buf := mload(0x40)
            mstore(buf, seed)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(add(buf, 0x20), i)
                let m := 0
                let g := 0
                // x - lo wraps around below lo: one comparison tests lo <= x < lo + width.
                for {} lt(g, shr(2, k)) { g := add(g, 1) } {
                    mstore(add(buf, 0x40), g)
                    let h := keccak256(buf, 0x60)
                    m := add(m, lt(sub(mod(and(h, 0xffffffffffffffff), total), lo), width))
                    m := add(m, lt(sub(mod(and(shr(64, h), 0xffffffffffffffff), total), lo), width))
                    m := add(m, lt(sub(mod(and(shr(128, h), 0xffffffffffffffff), total), lo), width))
                    m := add(m, lt(sub(mod(shr(192, h), total), lo), width))
                }
                if and(k, 3) {
                    mstore(add(buf, 0x40), g)
                    let h := keccak256(buf, 0x60)
                    for { let c := 0 } lt(c, and(k, 3)) { c := add(c, 1) } {
                        m := add(m, lt(sub(mod(and(shr(shl(6, c), h), 0xffffffffffffffff), total), lo), width))
                    }
                }
                if m {
                    let word := add(mults, shl(5, shr(5, i)))
                    mstore(word, or(mload(word), shl(shl(3, and(i, 31)), m)))
                    // slither-disable-next-line incorrect-shift shl(shift, value): 3 shifted left by 2i
                    fields := or(fields, shl(shl(1, i), 3))
                    weight := add(weight, m)
                }
            }
        }
    }

    /// @dev Appends `weight` to the task's line for a validator active from `fromRound` on (not less than
    /// any earlier one's); returns its offset.
    function _addWeight(Pool storage pool, uint256 fromRound, uint256 weight) private returns (uint64 offset) {
        Pool memory p = pool;
        if (fromRound != p.pendingFrom) {
            p.active += p.pending;
            p.pending = 0;
            p.pendingFrom = uint32(fromRound);
        }
        offset = p.active + p.pending;
        p.pending += uint64(weight);
        pool.active = p.active;
        pool.pending = p.pending;
        pool.pendingFrom = p.pendingFrom;
    }

    /// @dev Records the caller's revealed vote for `modelHash` (its tag) and adds its weight to the hash's
    /// votes; returns them.
    function _addVote(uint256 taskId, uint256 round, bytes32 modelHash, Ballot memory b)
        private
        returns (uint256 votes)
    {
        bytes32 tag = _tag(modelHash);
        _votes[taskId][round][msg.sender] = tag;
        uint256 weight = 1;
        if (b.draws != 0) (,, weight) = _committee(taskId, round, _validators[taskId][msg.sender], b);
        votes = _modelVotes[taskId][round][tag] + weight;
        _modelVotes[taskId][round][tag] = votes;
    }

    /// @dev The round's revealed weight: the revealers without committees, their draws with them.
    function _revealedWeight(Ballot memory b) private pure returns (uint256) {
        // slither-disable-next-line incorrect-equality a count of draws (0: no committees), not a balance or a time
        return b.draws == 0 ? b.revealed : b.revealedWeight;
    }

    /// @dev `_count` for the submissions `start ..` of one tally slot (ten of them, or up to `n`): the slot's
    /// new word and their decisions (at their places in a decision vector).
    function _countSlot(
        uint256 word,
        uint256 verdicts,
        uint256[4] memory mults,
        uint256 start,
        uint256 n,
        uint256 quorum
    ) private pure returns (uint256, uint256 decisions) {
        // Indices stay below 128 and counters below 256: nothing here can overflow.
        unchecked {
            uint256 end = start + _PER_SLOT < n ? start + _PER_SLOT : n;
            uint256 shift = 0;
            for (uint256 i = start; i < end; ++i) {
                uint256 code = (verdicts >> (2 * i)) & 3;
                uint256 m = _byteAt(mults, i);
                // A counter never exceeds the number of reveals (<= 255), or k (<= 64) with committees, so
                // no carry into the next one. A field without a verdict has m == 0 and adds nothing.
                word += m << (shift + 8 * (code - 1));
                decisions |= _decide(word >> shift, quorum) << (2 * i);
                shift += _TALLY_BITS;
            }
        }
        return (word, decisions);
    }

    /// @dev Byte `i` (< 128) of `mults`: word i / 32, bits 8 * (i % 32) up.
    function _byteAt(uint256[4] memory mults, uint256 i) private pure returns (uint256 m) {
        // slither-disable-next-line assembly a read of a fixed array without a bounds check (i < 128)
        assembly ("memory-safe") {
            m := and(shr(shl(3, and(i, 31)), mload(add(mults, shl(5, shr(5, i))))), 0xff)
        }
    }

    /// @dev Stores the round's decisions with the marker and a stamp of the number of reveals (so every
    /// reveal changes every decision slot and pays the same for it).
    function _storeDecisions(uint256 taskId, uint256 round, uint256 n, uint256 decisions, uint256 reveals)
        private
    {
        mapping(uint256 => uint256) storage decided = _decided[taskId][round];
        uint256 stamp = _MARKER | (reveals << _STAMP_SHIFT);
        decided[0] = stamp | (decisions & _DECISION_MASK);
        if (n > _DECISIONS_PER_SLOT) decided[1] = stamp | (decisions >> 128);
    }

    /// @dev The round's decisions packed like a verdict vector (0 = undecided).
    function _decisions(uint256 taskId, uint256 round, uint256 n) private view returns (uint256 decisions) {
        mapping(uint256 => uint256) storage decided = _decided[taskId][round];
        decisions = decided[0] & _DECISION_MASK;
        if (n > _DECISIONS_PER_SLOT) decisions |= (decided[1] & _DECISION_MASK) << 128;
    }

    /// @dev Reverts unless the caller's allocation to the task is at least the minimum validator stake.
    function _requireStake(uint256 taskId) private view {
        (uint256 allocated, uint256 required) = ITaskEscrow(_escrow).validatorStakeOf(taskId, msg.sender);
        if (allocated < required) revert StakeTooLow(taskId, msg.sender, allocated, required);
    }

    /// @dev The decision given a submission's packed counts (low 24 bits: accepts, rejects, unavailables):
    /// the verdict v with `3 * count(v) >= 2 * n`, where n is the sum of the three counts (the validators
    /// that judged it), provided `n >= quorum`; otherwise 0. At most one verdict can reach two thirds when
    /// n >= 1, so the sum `1 * [accepts] + 2 * [rejects] + 3 * [unavailables]` is the decision; computed
    /// without branches so that every reveal costs the same.
    function _decide(uint256 counts, uint256 quorum) private pure returns (uint256 decision) {
        // slither-disable-next-line assembly comparisons as 0/1 without branches, so every reveal costs the same
        assembly ("memory-safe") {
            let accepts := and(counts, 0xff)
            let rejects := and(shr(8, counts), 0xff)
            let unavailables := and(shr(16, counts), 0xff)
            let n := add(add(accepts, rejects), unavailables)
            let twoThirds := mul(2, n)
            decision := add(
                iszero(lt(mul(3, accepts), twoThirds)),
                add(mul(2, iszero(lt(mul(3, rejects), twoThirds))), mul(3, iszero(lt(mul(3, unavailables), twoThirds))))
            )
            decision := mul(decision, iszero(lt(n, quorum)))
        }
    }

    /// @dev Whether a verdict vector agrees with every decided outcome on its own fields: no 2-bit field
    /// where the verdict and the decision are nonzero and differ.
    function _agrees(uint256 verdicts, uint256 decisions) private pure returns (bool) {
        uint256 x = verdicts ^ decisions;
        uint256 differs = (x | (x >> 1)) & _LOW_BITS;
        uint256 decided = (decisions | (decisions >> 1)) & _LOW_BITS;
        uint256 own = (verdicts | (verdicts >> 1)) & _LOW_BITS;
        // slither-disable-next-line incorrect-equality bit fields, not a balance: == 0 is exact
        return differs & decided & own == 0;
    }

    function _hasRevealed(uint256 taskId, uint256 round, address validator) private view returns (bool) {
        ValidatorRecord memory v = _validators[taskId][validator];
        return v.registered && (_revealedBitmaps[taskId][round] >> v.index) & 1 == 1;
    }

    /// @dev The reveal phase is over: its end passed, or every committer revealed (once commits closed).
    function _revealClosed(Ballot memory b) private view returns (bool) {
        if (block.timestamp < b.commitEnd) return false;
        // slither-disable-next-line incorrect-equality counters that move by one: == is exact
        return block.timestamp >= b.revealEnd || b.revealed == b.committed;
    }

    /// @dev The vote commit is over (given the reveal phase is): its end passed, or every revealer committed
    /// a vote (at once when nobody revealed).
    function _voteCommitClosed(Ballot memory b) private view returns (bool) {
        // slither-disable-next-line incorrect-equality counters that move by one: == is exact
        return block.timestamp >= b.voteCommitEnd || b.voteCommitted == b.revealed;
    }

    /// @dev The vote reveal is over (given the vote commit is): its end passed, or every vote committer
    /// revealed its vote.
    function _voteClosed(Ballot memory b) private view returns (bool) {
        // slither-disable-next-line incorrect-equality counters that move by one: == is exact
        return block.timestamp >= b.voteEnd || b.voted == b.voteCommitted;
    }

    /// @dev Whether `votes` for one hash agree the round's model: at least the quorum and two thirds of the
    /// revealed weight (each voter's vote weighs its draws with committees, 1 without). The vote opens after
    /// the reveals close, so the revealed weight no longer changes; votes for two hashes cannot both reach
    /// two thirds of it (each voter votes once, and a hash with votes >= quorum >= 1 has a nonzero revealed
    /// weight behind it), so a hash that passes this test is the round's winner.
    function _wins(uint256 votes, Ballot memory b) private pure returns (bool) {
        return votes >= b.quorum && 3 * votes >= 2 * _revealedWeight(b);
    }

    /// @dev What a revealed vote for `modelHash` is stored and counted as: keccak256(modelHash) with the lowest
    /// bit cleared (never a stored commitment, whose lowest bit is set; two hashes share a tag only by a
    /// keccak collision).
    function _tag(bytes32 modelHash) private pure returns (bytes32) {
        return keccak256(abi.encode(modelHash)) & ~_COMMITTED_BIT;
    }

    /// @dev keccak256(abi.encode(taskId, round, validator, modelHash, cidHash, salt)).
    function _voteCommitment(
        uint256 taskId,
        uint256 round,
        address validator,
        bytes32 modelHash,
        bytes32 cidHash,
        bytes32 salt
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(taskId, round, validator, modelHash, cidHash, salt));
    }
    // slither-disable-end timestamp
}
