// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAttestationRegistry} from "./interfaces/IAttestationRegistry.sol";
import {ITaskEscrow} from "./interfaces/ITaskEscrow.sol";
import {Cohort} from "./Cohort.sol";

/// @title AttestationRegistry
/// @notice Commit-reveal of verdict vectors, incremental two-thirds counting, model-hash votes.
///
/// Storage per round: the ballot (one slot), the revealed-validators bitmap (one slot, bit = validator
/// index), the tallies (three 8-bit counters per submission, ten submissions per slot), and one word per
/// validator (its commitment, overwritten by its verdict vector when it reveals). Opening a round writes
/// a nonzero marker (bit 255, never a counter or validator bit) into the bitmap and the tally slots, so
/// that reveals only ever rewrite nonzero slots.
contract AttestationRegistry is IAttestationRegistry {
    // slither-disable-start timestamp
    // (the phases are deadlines in block.timestamp by design: a proposer's seconds of skew move none of them
    // meaningfully; slither also counts comparisons of other fields of structs that hold a time)
    using Cohort for Cohort.Counter;

    uint256 private constant _MARKER = 1 << 255;
    uint256 private constant _PER_SLOT = 10;
    uint256 private constant _TALLY_BITS = 24;
    uint256 private constant _COUNT_MASK = 0xff;
    uint256 private constant _ACCEPT = 1;
    /// @dev Winner slot placeholder written at task creation so the agreeing vote rewrites a nonzero slot.
    bytes32 private constant _NO_WINNER = bytes32(uint256(1));

    /// @param votedRound the last round in which the validator voted on the model, plus one
    /// @param ballotsBefore ballots opened, when the validator joined, in the rounds before `fromRound - 1`
    /// (those rounds were finalised by then; round `fromRound - 1`, the one under way, may open its ballot
    /// after the join, so {expectedRoundsOf} looks at it separately)
    struct ValidatorRecord {
        bool registered;
        uint8 index;
        uint32 fromRound;
        uint32 votedRound;
        uint32 ballotsBefore;
    }

    address private immutable _escrow;

    mapping(uint256 taskId => mapping(uint256 round => Ballot)) private _ballots;
    mapping(uint256 taskId => mapping(uint256 round => uint256 bitmap)) private _revealedBitmaps;
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 slot => uint256 counts))) private _tallies;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address validator => bytes32 word))) private _words;
    mapping(uint256 taskId => mapping(uint256 round => mapping(bytes32 modelHash => uint256 votes))) private _modelVotes;
    mapping(uint256 taskId => mapping(address validator => ValidatorRecord)) private _validators;
    mapping(uint256 taskId => Cohort.Counter) private _cohorts;
    mapping(uint256 taskId => bytes32 modelHash) private _winners;

    /// @param escrow_ the TaskEscrow (its address may be computed before it is deployed)
    constructor(address escrow_) {
        // slither-disable-next-line missing-zero-check computed from the deployer's nonce, checked by deploy_protocol
        _escrow = escrow_;
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
        uint256 bit = 1 << _validators[taskId][msg.sender].index;
        uint256 bitmap = _revealedBitmaps[taskId][round];
        if (bitmap & bit != 0) revert AlreadyRevealed(taskId, round, msg.sender);
        bytes32 computed = keccak256(abi.encode(taskId, round, msg.sender, verdicts, salt));
        if (computed != stored) revert CommitmentMismatch(stored, computed);
        _requireStake(taskId);

        _words[taskId][round][msg.sender] = bytes32(verdicts);
        _revealedBitmaps[taskId][round] = bitmap | bit;
        (uint256 addMask, uint256 subMask) = _count(taskId, round, verdicts, b);
        if (addMask | subMask != 0) {
            (uint256 added, uint256 removed) = ITaskEscrow(_escrow).sumWorkUnits(taskId, round, addMask, subMask);
            // `removed` was part of the accepted work, and the total of a round's work fits in 64 bits
            // (at most 128 submissions of at most 2^32 - 1 units).
            unchecked {
                ballot.acceptedWork = uint64(b.acceptedWork + added - removed);
            }
        }
        // At most `committed` (<= 255) validators reveal.
        unchecked {
            b.revealed += 1;
        }
        ballot.revealed = b.revealed;
        if (b.revealed == b.committed) ballot.revealEnd = uint40(block.timestamp);
        emit VerdictsRevealed(taskId, round, msg.sender, verdicts, salt);
    }

    /// @inheritdoc IAttestationRegistry
    function voteModel(uint256 taskId, uint256 round, bytes32 modelHash, string calldata modelCid) external {
        if (modelHash == 0) revert ZeroHash();
        Ballot storage ballot = _ballots[taskId][round];
        Ballot memory b = ballot;
        if (b.commitEnd == 0) revert VotingNotOpen(taskId, round);
        if (!_revealClosed(b) || block.timestamp >= b.voteEnd) {
            revert VotePhaseNotOpen(taskId, round, b.voteEnd, block.timestamp);
        }
        ValidatorRecord storage record = _validators[taskId][msg.sender];
        ValidatorRecord memory v = record;
        if (!v.registered || (_revealedBitmaps[taskId][round] >> v.index) & 1 == 0) {
            revert NotRevealed(taskId, round, msg.sender);
        }
        if (v.votedRound == round + 1) revert AlreadyVoted(taskId, round, msg.sender);

        record.votedRound = uint32(round + 1);
        uint256 votes = _modelVotes[taskId][round][modelHash] + 1;
        _modelVotes[taskId][round][modelHash] = votes;
        // Only validators that revealed (<= 255) vote, once each.
        unchecked {
            b.voted += 1;
        }
        ballot.voted = b.voted;
        if (b.voted == b.revealed) ballot.voteEnd = uint40(block.timestamp);
        emit ModelVoted(taskId, round, msg.sender, modelHash, modelCid);
        if (!b.agreed && votes >= b.quorum && 3 * votes >= 2 * uint256(b.revealed)) {
            ballot.agreed = true;
            _winners[taskId] = modelHash;
            emit ModelAgreed(taskId, round, modelHash, modelCid, votes);
        }
    }

    // ---------------------------------------------------------------- escrow

    /// @inheritdoc IAttestationRegistry
    function initTask(uint256 taskId) external onlyEscrow {
        _winners[taskId] = _NO_WINNER;
    }

    /// @inheritdoc IAttestationRegistry
    function registerValidator(uint256 taskId, address validator, uint256 fromRound, uint256 maxValidators)
        external
        onlyEscrow
        returns (uint256 index)
    {
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
    }

    /// @inheritdoc IAttestationRegistry
    function openRound(
        uint256 taskId,
        uint256 round,
        uint256 submissions,
        uint256 quorum,
        uint256 commitDeadline,
        uint256 revealDeadline,
        uint256 voteDeadline
    ) external onlyEscrow {
        Ballot storage ballot = _ballots[taskId][round];
        if (ballot.commitEnd != 0) revert VotingAlreadyOpen(taskId, round);
        Cohort.Counter storage cohort = _cohorts[taskId];
        uint256 expected = cohort.activeAt(round);
        cohort.markBallot();
        // With no validator to wait for, the commit phase is over at once (and so are the others).
        ballot.commitEnd = uint40(expected == 0 ? block.timestamp : commitDeadline);
        ballot.revealEnd = uint40(revealDeadline);
        ballot.voteEnd = uint40(voteDeadline);
        ballot.submissions = uint8(submissions);
        ballot.expected = uint8(expected);
        ballot.quorum = uint8(quorum);
        _revealedBitmaps[taskId][round] = _MARKER;
        mapping(uint256 => uint256) storage tallies = _tallies[taskId][round];
        for (uint256 slot = 0; slot * _PER_SLOT < submissions; ++slot) {
            tallies[slot] = _MARKER;
        }
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
        if (!_voteClosed(b)) return Phase.Vote;
        return Phase.Closed;
    }

    /// @inheritdoc IAttestationRegistry
    function outcome(uint256 taskId, uint256 round)
        external
        view
        returns (bool closed, uint256 acceptedWork, uint256 revealed, bool agreed, bytes32 winner)
    {
        Ballot memory b = _ballots[taskId][round];
        closed = b.commitEnd != 0 && _revealClosed(b) && _voteClosed(b);
        if (b.agreed) winner = _winners[taskId];
        return (closed, b.acceptedWork, b.revealed, b.agreed, winner);
    }

    /// @inheritdoc IAttestationRegistry
    function decisionOf(uint256 taskId, uint256 round, uint256 index) external view returns (Verdict) {
        Ballot memory b = _ballots[taskId][round];
        if (index >= b.submissions) return Verdict.None;
        uint256 counts = _tallies[taskId][round][index / _PER_SLOT] >> ((index % _PER_SLOT) * _TALLY_BITS);
        return Verdict(_decide(counts, b.revealed, b.quorum));
    }

    /// @inheritdoc IAttestationRegistry
    function decisionsOf(uint256 taskId, uint256 round) external view returns (uint256) {
        return _decisions(taskId, round, _ballots[taskId][round]);
    }

    /// @inheritdoc IAttestationRegistry
    function tallyOf(uint256 taskId, uint256 round, uint256 index)
        external
        view
        returns (uint256 accepts, uint256 rejects, uint256 unavailables)
    {
        if (index >= _ballots[taskId][round].submissions) return (0, 0, 0);
        uint256 counts = _tallies[taskId][round][index / _PER_SLOT] >> ((index % _PER_SLOT) * _TALLY_BITS);
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
        returns (bool expected, bool revealed, bool agreed, uint256 index)
    {
        ValidatorRecord memory v = _validators[taskId][validator];
        Ballot memory b = _ballots[taskId][round];
        expected = v.registered && v.fromRound <= round && b.commitEnd != 0;
        revealed = expected && (_revealedBitmaps[taskId][round] >> v.index) & 1 == 1;
        if (revealed) {
            uint256 verdicts = uint256(_words[taskId][round][validator]);
            uint256 decisions = _decisions(taskId, round, b);
            agreed = true;
            for (uint256 i = 0; i < b.submissions; ++i) {
                uint256 decision = (decisions >> (2 * i)) & 3;
                if (decision != 0 && decision != (verdicts >> (2 * i)) & 3) {
                    agreed = false;
                    break;
                }
            }
        }
        index = v.index;
    }

    /// @inheritdoc IAttestationRegistry
    function modelVotesOf(uint256 taskId, uint256 round, bytes32 modelHash) external view returns (uint256) {
        return _modelVotes[taskId][round][modelHash];
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
    function taskEscrow() external view returns (address) {
        return _escrow;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Adds `verdicts` to the round's tallies (checking it has a verdict for every submission and
    /// nothing above) and returns which submissions became accepted and which stopped being accepted, given
    /// that the number of revealed validators grows by one.
    function _count(uint256 taskId, uint256 round, uint256 verdicts, Ballot memory b)
        private
        returns (uint256 addMask, uint256 subMask)
    {
        uint256 n = b.submissions;
        // A shift by 256 (n == 128) yields 0 in the EVM: every bit is then in use.
        if (verdicts >> (2 * n) != 0) revert MalformedVerdicts(verdicts, n);
        mapping(uint256 => uint256) storage tallies = _tallies[taskId][round];
        for (uint256 first = 0; first < n; first += _PER_SLOT) {
            uint256 slot = first / _PER_SLOT;
            (uint256 word, uint256 wasAccepted, uint256 isAccepted) = _countSlot(tallies[slot], verdicts, first, b);
            tallies[slot] = word;
            addMask |= isAccepted & ~wasAccepted;
            subMask |= wasAccepted & ~isAccepted;
        }
    }

    /// @dev `_count` for the submissions `first ..` of one tally slot: the new slot word and the bitmaps of
    /// the submissions accepted before and after this reveal.
    function _countSlot(uint256 word, uint256 verdicts, uint256 first, Ballot memory b)
        private
        pure
        returns (uint256, uint256 wasAccepted, uint256 isAccepted)
    {
        uint256 end = first + _PER_SLOT < b.submissions ? first + _PER_SLOT : b.submissions;
        for (uint256 i = first; i < end; ++i) {
            uint256 shift = (i - first) * _TALLY_BITS;
            uint256 code = (verdicts >> (2 * i)) & 3;
            if (code == 0) revert MalformedVerdicts(verdicts, b.submissions);
            if (_decide(word >> shift, b.revealed, b.quorum) == _ACCEPT) wasAccepted |= 1 << i;
            // A counter never exceeds the revealed count (<= 255), so no carry into the next one.
            word += 1 << (shift + 8 * (code - 1));
            if (_decide(word >> shift, uint256(b.revealed) + 1, b.quorum) == _ACCEPT) isAccepted |= 1 << i;
        }
        return (word, wasAccepted, isAccepted);
    }

    /// @dev Reverts unless the caller's allocation to the task is at least the minimum validator stake.
    function _requireStake(uint256 taskId) private view {
        (uint256 allocated, uint256 required) = ITaskEscrow(_escrow).validatorStakeOf(taskId, msg.sender);
        if (allocated < required) revert StakeTooLow(taskId, msg.sender, allocated, required);
    }

    /// @dev The decision given a submission's packed counts (low 24 bits) and the revealed count.
    function _decide(uint256 counts, uint256 revealed, uint256 quorum) private pure returns (uint256) {
        // slither-disable-next-line incorrect-equality a count of reveals, not a balance: == is exact
        if (revealed < quorum || revealed == 0) return 0;
        uint256 twoThirds = 2 * revealed;
        if (3 * (counts & _COUNT_MASK) >= twoThirds) return 1;
        if (3 * ((counts >> 8) & _COUNT_MASK) >= twoThirds) return 2;
        if (3 * ((counts >> 16) & _COUNT_MASK) >= twoThirds) return 3;
        return 0;
    }

    function _decisions(uint256 taskId, uint256 round, Ballot memory b) private view returns (uint256 decisions) {
        mapping(uint256 => uint256) storage tallies = _tallies[taskId][round];
        // slither-disable-next-line uninitialized-local loaded from the first tally slot (i == 0) before any read
        uint256 word;
        for (uint256 i = 0; i < b.submissions; ++i) {
            uint256 position = i % _PER_SLOT;
            if (position == 0) word = tallies[i / _PER_SLOT];
            decisions |= _decide(word >> (position * _TALLY_BITS), b.revealed, b.quorum) << (2 * i);
        }
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

    /// @dev The model vote is over (given the reveal phase is): its end passed, or every revealer voted.
    function _voteClosed(Ballot memory b) private view returns (bool) {
        // slither-disable-next-line incorrect-equality counters that move by one: == is exact
        return block.timestamp >= b.voteEnd || b.voted == b.revealed;
    }
    // slither-disable-end timestamp
}
