// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IAppealCourt} from "./interfaces/IAppealCourt.sol";
import {IAttestationRegistry} from "./interfaces/IAttestationRegistry.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {ITaskEscrow} from "./interfaces/ITaskEscrow.sol";

/// @title AppealCourt
/// @notice Appeals of a round's decisions to a larger stake-weighted committee (see {IAppealCourt}). It reads
/// the TaskEscrow and the AttestationRegistry, is the StakeManager's third slasher (and the only account that
/// may {IStakeManager-seize} a slash instead of burning it), and holds the bonds and the credits it owes.
contract AppealCourt is IAppealCourt, ReentrancyGuardTransient {
    // slither-disable-start timestamp
    // (the window and the phases are block.timestamp deadlines by design, as in the escrow and the registry)
    using SafeERC20 for IERC20;

    uint256 private constant _BPS = 10_000;
    uint256 private constant _BLOCKHASH_WINDOW = 256;
    uint256 private constant _MAX_DRAWS = 1024;
    uint256 private constant _ACCEPT = uint256(IAttestationRegistry.Verdict.Accept);
    uint256 private constant _REJECT = uint256(IAttestationRegistry.Verdict.Reject);
    /// @dev A revealed juror word is its verdict (1..3), + 4 when it was silent in an earlier attempt.
    uint256 private constant _SILENT_BEFORE = 4;
    uint256 private constant _MAX_WORD = 7;
    address private constant _BURN = 0x000000000000000000000000000000000000dEaD;

    ITaskEscrow private immutable _escrow;
    IAttestationRegistry private immutable _registry;
    IStakeManager private immutable _stakes;
    IERC20 private immutable _token;
    uint256 private immutable _window;
    uint256 private immutable _draws;
    uint256 private immutable _bond;
    uint256 private immutable _commitDuration;
    uint256 private immutable _revealDuration;
    uint256 private immutable _slashBps;
    uint256 private immutable _rewardBps;
    uint256 private immutable _silenceBps;

    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 index => Appeal))) private _appeals;
    mapping(uint256 taskId => mapping(uint256 round => RoundAppeals)) private _rounds;
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 index => mapping(address => bytes32))))
        private _jurors;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address validator => JurorRound))) private _settled;
    mapping(address account => uint256 amount) private _owed;

    /// @dev A validator's slashes over the appeals of a round: its allocation before them, the total slashed,
    /// and the part the court keeps to pay the wronged trainers and the appellants.
    struct Tally {
        uint256 allocation;
        uint256 slashed;
        uint256 kept;
        bool silenceDue;
        bool silenced;
    }

    /// @dev A validator's settlement over a round's appeals: the appealed indices already settled, whether
    /// its silence was slashed (at most once a round), and whether its allocation was below the task's
    /// minimum stake at the round's first batch (then its silence is never slashed in the round).
    struct JurorRound {
        uint128 settled;
        bool silenceSlashed;
        bool belowMinimum;
    }

    /// @param escrow_ the deployment's TaskEscrow (its token, StakeManager and AttestationRegistry are read
    /// from it)
    /// @param window_ seconds after a round's ballot closed during which its decisions can be appealed (> 0)
    /// @param draws_ K_a, the appeal committee's draws (1..1024)
    /// @param bond_ what an appeal posts, in the token (> 0)
    /// @param commitDuration_, revealDuration_ the juror phases (> 0 each)
    /// @param slashBps_ a losing validator's slash per overturned appeal, of its allocation (1..10000)
    /// @param rewardBps_ the appellant's part of an overturned appeal's slashes, after the wronged trainer's
    /// (0..10000)
    /// @param silenceBps_ a drawn juror's slash for silence, at most once a round, of its allocation (1..10000)
    constructor(
        ITaskEscrow escrow_,
        uint256 window_,
        uint256 draws_,
        uint256 bond_,
        uint256 commitDuration_,
        uint256 revealDuration_,
        uint256 slashBps_,
        uint256 rewardBps_,
        uint256 silenceBps_
    ) {
        if (
            window_ == 0 || draws_ == 0 || draws_ > _MAX_DRAWS || commitDuration_ == 0 || revealDuration_ == 0
                || slashBps_ == 0 || slashBps_ > _BPS || rewardBps_ > _BPS || silenceBps_ == 0 || silenceBps_ > _BPS
        ) {
            revert InvalidAppealParams(
                window_, draws_, commitDuration_, revealDuration_, slashBps_, rewardBps_, silenceBps_
            );
        }
        if (bond_ == 0 || bond_ > type(uint128).max) revert InvalidBond(bond_);
        _escrow = escrow_;
        _registry = IAttestationRegistry(escrow_.attestationRegistry());
        _stakes = IStakeManager(escrow_.stakeManager());
        _token = IERC20(escrow_.token());
        _window = window_;
        _draws = draws_;
        _bond = bond_;
        _commitDuration = commitDuration_;
        _revealDuration = revealDuration_;
        _slashBps = slashBps_;
        _rewardBps = rewardBps_;
        _silenceBps = silenceBps_;
    }

    // ---------------------------------------------------------------- appeals

    /// @inheritdoc IAppealCourt
    function appeal(uint256 taskId, uint256 round, uint256 index) external nonReentrant {
        if (_escrow.taskState(taskId).round <= round) revert RoundNotFinalized(taskId, round);
        IAttestationRegistry.Ballot memory b = _registry.ballotOf(taskId, round);
        uint256 closesAt = uint256(b.voteEnd) + _window;
        if (block.timestamp >= closesAt) revert AppealWindowClosed(taskId, round, closesAt, block.timestamp);
        uint256 original = index < b.submissions ? (_registry.decisionsOf(taskId, round) >> (2 * index)) & 3 : 0;
        if (original == 0) revert NotDecided(taskId, round, index);
        Appeal storage a = _appeals[taskId][round][index];
        bool again = a.appellant != address(0);
        // slither-disable-next-line uninitialized-local read only for a new attempt
        Appeal memory previous;
        if (again) {
            previous = a;
            // A decision is appealed once, unless its appeal ended without the reveal quorum: then it was not
            // judged, and a new attempt goes before the same committee (the first attempt's seed and W_r, so
            // that silence cannot re-draw it), whose phases open now.
            if (!previous.decided || !_noQuorum(previous.acceptWeight, previous.otherWeight)) {
                revert AlreadyAppealed(taskId, round, index);
            }
            delete _appeals[taskId][round][index];
        }
        a.appellant = msg.sender;
        a.original = IAttestationRegistry.Verdict(original);
        a.bond = uint128(_bond);
        RoundAppeals storage r = _rounds[taskId][round];
        // index < submissions <= 128; at most 128 appeals a round.
        r.appealed |= uint128(1 << index);
        r.pending += 1;
        if (!again) {
            a.seedBlock = uint40(block.number + 1);
            emit AppealFiled(
                taskId, round, index, msg.sender, IAttestationRegistry.Verdict(original), _bond, block.number + 1
            );
        } else {
            uint256 commitEnd = block.timestamp + _commitDuration;
            uint256 revealEnd = commitEnd + _revealDuration;
            a.seedBlock = previous.seedBlock;
            a.attempt = previous.attempt + 1;
            a.seed = previous.seed;
            a.totalWeight = previous.totalWeight;
            a.commitEnd = uint40(commitEnd);
            a.revealEnd = uint40(revealEnd);
            emit AppealFiled(
                taskId, round, index, msg.sender, IAttestationRegistry.Verdict(original), _bond, previous.seedBlock
            );
            emit AppealDrawn(taskId, round, index, previous.seed, previous.totalWeight, commitEnd, revealEnd);
        }
        _pull(_bond);
    }

    /// @inheritdoc IAppealCourt
    function drawAppeal(uint256 taskId, uint256 round, uint256 index) external returns (bool drawn) {
        Appeal storage a = _appeals[taskId][round][index];
        Appeal memory m = a;
        if (m.appellant == address(0)) revert NoAppeal(taskId, round, index);
        if (m.seed != 0) revert AlreadyDrawn(taskId, round, index);
        if (block.number <= m.seedBlock) revert SeedTooEarly(m.seedBlock, block.number);
        if (block.number - m.seedBlock > _BLOCKHASH_WINDOW) {
            a.seedBlock = uint40(block.number + 1);
            emit AppealSeedArmed(taskId, round, index, block.number + 1);
            return false;
        }
        bytes32 seed = blockhash(m.seedBlock);
        // slither-disable-next-line unused-return only the round's total weight is needed
        (,, uint256 total) = _registry.lineOf(taskId, round, address(0));
        uint256 commitEnd = block.timestamp + _commitDuration;
        uint256 revealEnd = commitEnd + _revealDuration;
        a.seed = seed;
        a.totalWeight = uint64(total);
        a.commitEnd = uint40(commitEnd);
        a.revealEnd = uint40(revealEnd);
        emit AppealDrawn(taskId, round, index, seed, total, commitEnd, revealEnd);
        return true;
    }

    /// @inheritdoc IAppealCourt
    function commitAppeal(uint256 taskId, uint256 round, uint256 index, bytes32 commitment) external {
        // 0 is "not committed" and 1..7 are revealed words: a commitment among them would be read as a
        // reveal (no silence slash, a winner's share no bond backs; found by review).
        if (uint256(commitment) <= _MAX_WORD) revert InvalidCommitment(commitment);
        Appeal storage a = _appeals[taskId][round][index];
        Appeal memory m = a;
        if (m.seed == 0) revert NotDrawn(taskId, round, index);
        if (block.timestamp >= m.commitEnd) {
            revert CommitPhaseClosed(taskId, round, index, m.commitEnd, block.timestamp);
        }
        uint256 weight = _multiplicity(taskId, round, index, m, msg.sender);
        if (weight == 0) revert NotJuror(taskId, round, index, msg.sender);
        mapping(address => bytes32) storage words = _jurors[taskId][round][_slot(index, m.attempt)];
        if (words[msg.sender] != 0) revert AlreadyCommitted(taskId, round, index, msg.sender);
        words[msg.sender] = commitment;
        // The draws of the committers sum to at most K_a <= 1024.
        m.committedWeight = uint16(m.committedWeight + weight);
        a.committedWeight = m.committedWeight;
        if (m.committedWeight == _draws) a.commitEnd = uint40(block.timestamp);
        emit AppealCommitted(taskId, round, index, msg.sender, commitment, weight);
    }

    /// @inheritdoc IAppealCourt
    function revealAppeal(uint256 taskId, uint256 round, uint256 index, uint8 verdict, bytes32 salt) external {
        Appeal storage a = _appeals[taskId][round][index];
        Appeal memory m = a;
        if (m.seed == 0) revert NotDrawn(taskId, round, index);
        if (block.timestamp < m.commitEnd || _revealClosed(m)) {
            revert RevealPhaseNotOpen(taskId, round, index, m.commitEnd, m.revealEnd, block.timestamp);
        }
        mapping(address => bytes32) storage words = _jurors[taskId][round][_slot(index, m.attempt)];
        bytes32 stored = words[msg.sender];
        if (stored == 0) revert NotCommitted(taskId, round, index, msg.sender);
        if (uint256(stored) <= _MAX_WORD) revert AlreadyRevealed(taskId, round, index, msg.sender);
        if (verdict == 0 || verdict > 3) revert InvalidVerdict(verdict);
        bytes32 computed = _commitment(taskId, round, index, msg.sender, verdict, salt);
        if (computed != stored) revert CommitmentMismatch(stored, computed);
        (uint256 allocated, uint256 required) = _escrow.validatorStakeOf(taskId, msg.sender);
        if (allocated < required) revert StakeTooLow(taskId, msg.sender, allocated, required);

        words[msg.sender] = bytes32(_revealedWord(taskId, round, index, m.attempt, verdict));
        uint256 weight = _multiplicity(taskId, round, index, m, msg.sender);
        // Revealed draws are committed draws: at most K_a <= 1024.
        if (verdict == _ACCEPT) {
            a.acceptWeight = uint16(m.acceptWeight + weight);
        } else {
            a.otherWeight = uint16(m.otherWeight + weight);
        }
        if (m.acceptWeight + m.otherWeight + weight == m.committedWeight) a.revealEnd = uint40(block.timestamp);
        emit AppealRevealed(taskId, round, index, msg.sender, IAttestationRegistry.Verdict(verdict), salt, weight);
    }

    /// @inheritdoc IAppealCourt
    function settleAppeal(uint256 taskId, uint256 round, uint256 index) external nonReentrant {
        Appeal storage a = _appeals[taskId][round][index];
        Appeal memory m = a;
        if (m.appellant == address(0)) revert NoAppeal(taskId, round, index);
        if (m.decided) revert AlreadyDecidedAppeal(taskId, round, index);
        if (m.seed == 0 || block.timestamp < m.commitEnd || !_revealClosed(m)) {
            revert AppealOpen(taskId, round, index, m.revealEnd, block.timestamp);
        }
        (bool overturned, uint256 winners) = _decide(m);
        a.decided = true;
        a.overturned = overturned;
        RoundAppeals storage r = _rounds[taskId][round];
        r.pending -= 1;
        bool originalAccept = m.original == IAttestationRegistry.Verdict.Accept;
        uint256 finalVerdict = overturned ? (originalAccept ? _REJECT : _ACCEPT) : uint256(m.original);
        if (overturned) {
            r.fields |= 3 << (2 * index);
            r.finals |= finalVerdict << (2 * index);
            if (!originalAccept) {
                m.victimOwed = _reward(taskId, round, index);
                a.victimOwed = m.victimOwed;
            }
        }
        (uint256 paidBack, uint256 burned) = _bondOutcome(m, overturned, winners);
        if (m.perDraw != 0) a.perDraw = m.perDraw;
        if (paidBack != 0) _owed[m.appellant] += paidBack;
        emit AppealDecided(
            taskId,
            round,
            index,
            overturned,
            IAttestationRegistry.Verdict(finalVerdict),
            paidBack,
            m.perDraw,
            m.victimOwed,
            burned
        );
        if (burned != 0 && !_token.trySafeTransfer(_BURN, burned)) _owed[_BURN] += burned;
    }

    /// @inheritdoc IAppealCourt
    function settleJuror(uint256 taskId, uint256 round, address validator, uint256 indices) external nonReentrant {
        JurorRound storage j = _settled[taskId][round][validator];
        Tally memory t = _openBatch(taskId, round, validator, indices, j);
        (bytes32 word, bool revealed) = _registry.verdictsOf(taskId, round, validator);
        uint256 verdicts = revealed ? uint256(word) : 0;
        for (uint256 index = 0; index < 128; ++index) {
            if ((indices >> index) & 1 == 0) continue;
            _settleOne(taskId, round, index, validator, (verdicts >> (2 * index)) & 3, t);
        }
        if (t.silenced) j.silenceSlashed = true;
        emit JurorRoundSettled(taskId, round, validator, t.slashed, t.kept);
        if (t.slashed != 0) _requireExact(_stakes.seize(validator, taskId, t.slashed, t.kept), t.slashed);
    }

    /// @inheritdoc IAppealCourt
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _owed[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        _owed[msg.sender] = 0;
        emit CourtClaimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- hooks

    /// @inheritdoc IAppealCourt
    function settledDecision(uint256 taskId, uint256 round, uint256 index, uint256 decided, uint256 voteEnd)
        external
        view
        returns (IAttestationRegistry.Verdict)
    {
        _requireWindowClosed(taskId, round, voteEnd);
        Appeal memory m = _appeals[taskId][round][index];
        if (m.appellant == address(0)) return IAttestationRegistry.Verdict(decided);
        if (!m.decided) revert AppealPending(taskId, round, index);
        if (!m.overturned) return IAttestationRegistry.Verdict(decided);
        // An overturned acceptance is settled as a rejection; an overturned rejection pays nothing through
        // the escrow (the round reserved nothing for it) and slashes nothing: the court pays its trainer.
        return m.original == IAttestationRegistry.Verdict.Accept
            ? IAttestationRegistry.Verdict.Reject
            : IAttestationRegistry.Verdict.None;
    }

    /// @inheritdoc IAppealCourt
    function validatorGate(uint256 taskId, uint256 round, address validator, uint256 voteEnd)
        external
        view
        returns (uint256 fields, uint256 finals)
    {
        _requireWindowClosed(taskId, round, voteEnd);
        // A round without appeals costs one read (the overturned fields are read only where there are some).
        RoundAppeals storage r = _rounds[taskId][round];
        if (r.appealed == 0) return (0, 0);
        if (r.pending != 0) revert AppealsPending(taskId, round, r.pending);
        if (_settled[taskId][round][validator].settled != r.appealed) revert JurorUnsettled(taskId, round, validator);
        return (r.fields, r.finals);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IAppealCourt
    function appealOf(uint256 taskId, uint256 round, uint256 index) external view returns (Appeal memory) {
        return _appeals[taskId][round][index];
    }

    /// @inheritdoc IAppealCourt
    function roundAppealsOf(uint256 taskId, uint256 round) external view returns (RoundAppeals memory) {
        return _rounds[taskId][round];
    }

    /// @inheritdoc IAppealCourt
    function jurorOf(uint256 taskId, uint256 round, uint256 index, address juror)
        external
        view
        returns (bytes32 word, bool revealed)
    {
        word = _jurors[taskId][round][_slot(index, _appeals[taskId][round][index].attempt)][juror];
        revealed = word != 0 && uint256(word) <= _MAX_WORD;
        if (revealed) word = bytes32(uint256(word) & 3);
    }

    /// @inheritdoc IAppealCourt
    function drawsOf(uint256 taskId, uint256 round, uint256 index, address validator) external view returns (uint256) {
        Appeal memory m = _appeals[taskId][round][index];
        // slither-disable-next-line incorrect-equality a zero seed is the not-drawn marker, not a balance
        if (m.seed == 0) return 0;
        return _multiplicity(taskId, round, index, m, validator);
    }

    /// @inheritdoc IAppealCourt
    function jurorSettled(uint256 taskId, uint256 round, address validator) external view returns (bool) {
        return _settled[taskId][round][validator].settled == _rounds[taskId][round].appealed;
    }

    /// @inheritdoc IAppealCourt
    function jurorSettledIndices(uint256 taskId, uint256 round, address validator) external view returns (uint256) {
        return _settled[taskId][round][validator].settled;
    }

    /// @inheritdoc IAppealCourt
    function owedTo(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @inheritdoc IAppealCourt
    function commitmentFor(uint256 taskId, uint256 round, uint256 index, address juror, uint8 verdict, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return _commitment(taskId, round, index, juror, verdict, salt);
    }

    /// @inheritdoc IAppealCourt
    function parameters()
        external
        view
        returns (uint256, uint256, uint256, uint256, uint256, uint256, uint256, uint256)
    {
        return (_window, _draws, _bond, _commitDuration, _revealDuration, _slashBps, _rewardBps, _silenceBps);
    }

    /// @inheritdoc IAppealCourt
    function taskEscrow() external view returns (address) {
        return address(_escrow);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Settles `validator` on the (decided) appeal of submission `index`, whose original verdict from it
    /// was `original` (0: none revealed there): slashes it `slashBps` if the appeal overturned the decision
    /// and its verdict (original or appeal) was on the losing side, or `silenceBps` if it was drawn and silent
    /// and its silence is still due (once a round, `t.silenceDue`); pays it an upheld appeal's share of its
    /// winning draws. Slashes are added to `t` (taken by the caller in one call).
    function _settleOne(uint256 taskId, uint256 round, uint256 index, address validator, uint256 original, Tally memory t)
        private
    {
        Appeal storage a = _appeals[taskId][round][index];
        Appeal memory m = a;
        uint256 weight = _multiplicity(taskId, round, index, m, validator);
        uint256 word = uint256(_jurors[taskId][round][_slot(index, m.attempt)][validator]);
        if (word > _MAX_WORD) word = 0;
        (bool lost, bool silent, bool pay) = _judge(m, weight, word & 3, original, word > 3);
        if (lost) {
            _slash(taskId, round, index, validator, a, m, t, _slashBps);
            return;
        }
        if (silent && t.silenceDue) {
            t.silenceDue = false;
            t.silenced = true;
            _slash(taskId, round, index, validator, a, m, t, _silenceBps);
        }
        if (pay) {
            uint256 paid = weight * m.perDraw;
            _owed[validator] += paid;
            emit JurorSettled(taskId, round, index, validator, JurorOutcome.Paid, 0, 0, 0, paid);
        }
    }

    /// @dev Whether a validator with `weight` draws, appeal `verdict` (0: none in the last attempt), ballot
    /// verdict `original` (0: none) and `silentBefore` (silent in an earlier attempt, before the same
    /// committee) lost (on the losing side of an overturn), was silent (drawn, and no verdict in some attempt)
    /// or is paid (a winning draw of an upheld appeal that pays per draw; silent before or not).
    function _judge(Appeal memory m, uint256 weight, uint256 verdict, uint256 original, bool silentBefore)
        private
        pure
        returns (bool lost, bool silent, bool pay)
    {
        uint256 finalAccept = (m.original == IAttestationRegistry.Verdict.Accept) != m.overturned ? 1 : 0;
        silent = weight != 0 && (verdict == 0 || silentBefore);
        lost = m.overturned
            && ((original != 0 && _isAccept(original) != finalAccept) || (verdict != 0 && _isAccept(verdict) != finalAccept));
        pay = !lost && !m.overturned && verdict != 0 && _isAccept(verdict) == finalAccept && m.perDraw != 0;
    }

    /// @dev Counts `bps` of what is left of `validator`'s allocation: an overturned appeal's slash pays
    /// the wronged trainer first and the appellant `rewardBps` of the rest (kept by the court), the rest is
    /// burned.
    // slither-disable-next-line calls-loop the deployment's own escrow, once per appeal of the round
    function _slash(
        uint256 taskId,
        uint256 round,
        uint256 index,
        address validator,
        Appeal storage a,
        Appeal memory m,
        Tally memory t,
        uint256 bps
    ) private {
        uint256 amount = (t.allocation - t.slashed) * bps / _BPS;
        // slither-disable-next-line uninitialized-local 0 unless the appeal overturned a rejection
        uint256 toVictim;
        // slither-disable-next-line uninitialized-local 0 unless the appeal overturned the decision
        uint256 toAppellant;
        address victim;
        if (m.overturned) {
            toVictim = amount < m.victimOwed ? amount : m.victimOwed;
            toAppellant = (amount - toVictim) * _rewardBps / _BPS;
            if (toVictim != 0) {
                a.victimOwed = uint128(m.victimOwed - toVictim);
                // slither-disable-next-line unused-return only the trainer is needed
                (victim,,) = _escrow.submissionOf(taskId, round, index);
                _owed[victim] += toVictim;
            }
            if (toAppellant != 0) _owed[m.appellant] += toAppellant;
        }
        t.slashed += amount;
        t.kept += toVictim + toAppellant;
        emit JurorSettled(taskId, round, index, validator, JurorOutcome.Slashed, amount, toVictim, toAppellant, 0);
    }

    /// @dev Whether the appeal overturns its decision: at least ceil(K_a / 2) draws revealed and the side
    /// opposite to the original (ACCEPT against not-ACCEPT) holds more than half of them; and, when it does
    /// not but the quorum revealed, the winning draws that share the bond (0: the bond goes back).
    function _decide(Appeal memory m) private view returns (bool overturned, uint256 winners) {
        uint256 revealed = uint256(m.acceptWeight) + m.otherWeight;
        uint256 opposite = m.original == IAttestationRegistry.Verdict.Accept ? m.otherWeight : m.acceptWeight;
        if (2 * revealed < _draws) return (false, 0);
        if (2 * opposite > revealed) return (true, 0);
        return (false, revealed - opposite);
    }

    /// @dev Where the bond goes: overturned, back to the appellant; upheld with the quorum, `perDraw` (set in
    /// `m`) to each winning draw and the dust back; without the quorum, the revealed draws' share
    /// `bond x revealed / K_a` back and the rest burned (a flood of appeals nobody can answer in time costs
    /// its filer the unanswered share: docs/protocol.md "Appeals").
    function _bondOutcome(Appeal memory m, bool overturned, uint256 winners)
        private
        view
        returns (uint256 paidBack, uint256 burned)
    {
        paidBack = m.bond;
        if (overturned) return (paidBack, 0);
        if (winners != 0) {
            m.perDraw = uint128(m.bond / winners);
            return (m.bond - m.perDraw * winners, 0);
        }
        paidBack = m.bond * (uint256(m.acceptWeight) + m.otherWeight) / _draws;
        burned = m.bond - paidBack;
    }

    /// @dev What submission `index` would have earned accepted, its acceptance diluting the others: with P
    /// the round's trainer pool `rewardPerRound - rewardPerRound * validatorShareBps / 10000` (the carry not
    /// counted: the escrow keeps neither the budget nor the accepted work), A = P / rate the accepted work it
    /// implies (0 when the round accepted nothing: rate 0) and w the submission's work units,
    /// `P * w / (A + w)`, and never more than `rate * w` when rate > 0 (so at most P, whatever w claims).
    function _reward(uint256 taskId, uint256 round, uint256 index) private view returns (uint128) {
        // slither-disable-next-line unused-return only the rate is needed
        (uint256 rate,,) = _escrow.roundResultOf(taskId, round);
        // slither-disable-next-line unused-return only the work units are needed
        (, uint256 workUnits,) = _escrow.submissionOf(taskId, round, index);
        ITaskEscrow.TaskConfig memory c = _escrow.taskConfig(taskId);
        uint256 pool = uint256(c.rewardPerRound) - uint256(c.rewardPerRound) * c.validatorShareBps / _BPS;
        uint256 implied = rate == 0 ? 0 : pool / rate;
        if (implied + workUnits == 0) return 0;
        // pool < 2^128 and workUnits < 2^32.
        uint256 owed = pool * workUnits / (implied + workUnits);
        if (rate != 0 && rate * workUnits < owed) owed = rate * workUnits;
        return SafeCast.toUint128(owed);
    }

    /// @dev `validator`'s draws on the appeal: the points of its interval on the round's line.
    // slither-disable-next-line calls-loop the deployment's own registry
    function _multiplicity(uint256 taskId, uint256 round, uint256 index, Appeal memory m, address validator)
        private
        view
        returns (uint256 count)
    {
        // slither-disable-next-line unused-return the round's total weight is the appeal's own (stored at the draw)
        (uint256 lo, uint256 width,) = _registry.lineOf(taskId, round, validator);
        // slither-disable-next-line incorrect-equality weights, not balances: 0 is "not on the line"
        if (width == 0 || m.totalWeight == 0) return 0;
        return _count(m.seed, index, _draws, m.totalWeight, lo, width);
    }

    /// @dev The draws d < k whose point, the 64-bit chunk d % 4 of keccak256(abi.encode(seed, index, d / 4))
    /// modulo `total`, lies in [lo, lo + width) (the registry's committee formula).
    function _count(bytes32 seed, uint256 index, uint256 k, uint256 total, uint256 lo, uint256 width)
        private
        pure
        returns (uint256 count)
    {
        for (uint256 g = 0; 4 * g < k; ++g) {
            uint256 h = uint256(keccak256(abi.encode(seed, index, g)));
            for (uint256 c = 0; c < 4 && 4 * g + c < k; ++c) {
                // slither-disable-next-line weak-prng a draw from a block hash by design (docs/protocol.md "Appeals")
                uint256 x = ((h >> (64 * c)) & type(uint64).max) % total;
                if (x >= lo && x < lo + width) ++count;
            }
        }
    }

    /// @dev Checks a batch of `settleJuror` (every appeal of the round decided, its window closed, `indices` a
    /// non-empty subset of the appealed ones none of which is settled for `validator`), marks it settled,
    /// and opens the validator's tally: its allocation now, and whether its silence is still due (once a
    /// round, and not below the minimum stake, where the juror could not reveal).
    function _openBatch(uint256 taskId, uint256 round, address validator, uint256 indices, JurorRound storage j)
        private
        returns (Tally memory t)
    {
        RoundAppeals memory r = _rounds[taskId][round];
        if (r.appealed == 0) revert NoAppeals(taskId, round);
        if (r.pending != 0) revert AppealsPending(taskId, round, r.pending);
        // Not before the window closed: a juror settled earlier could never be slashed for an appeal filed
        // later in the window (a cartel's decoy appeal, decided at once, would shield it from the real one).
        _requireWindowClosed(taskId, round, _registry.ballotOf(taskId, round).voteEnd);
        if (indices == 0 || indices & ~uint256(r.appealed) != 0) revert NotAppealedIndices(taskId, round, indices);
        JurorRound memory done = j;
        if (indices & done.settled != 0) revert JurorAlreadySettled(taskId, round, validator);
        (uint256 allocation, uint256 required) = _escrow.validatorStakeOf(taskId, validator);
        // Below the minimum at the round's first batch (where it could not reveal): exempt from the silence
        // slash in every batch, and only then (a batch's own slashes do not exempt it from a later one's).
        bool exempt = done.settled == 0 ? allocation < required : done.belowMinimum;
        // `indices` is a subset of `appealed` (checked above): it fits 128 bits.
        _settled[taskId][round][validator] = JurorRound(done.settled | uint128(indices), done.silenceSlashed, exempt);
        t = Tally(allocation, 0, 0, !done.silenceSlashed && !exempt, false);
    }

    /// @dev A juror's word once it revealed `verdict` in `attempt`: the verdict, + 4 when it was silent in an
    /// earlier attempt (before the same committee, where it was drawn too: its word in the previous attempt is
    /// not a verdict, or carries that silence), for {settleJuror}: silence is due whatever an attempt's outcome.
    function _revealedWord(uint256 taskId, uint256 round, uint256 index, uint256 attempt, uint256 verdict)
        private
        view
        returns (uint256)
    {
        if (attempt == 0) return verdict;
        uint256 before = uint256(_jurors[taskId][round][_slot(index, attempt - 1)][msg.sender]);
        return before == 0 || before > 3 ? verdict + _SILENT_BEFORE : verdict;
    }

    /// @dev The appeal ended without the reveal quorum: fewer than ceil(K_a / 2) draws revealed.
    function _noQuorum(uint256 acceptWeight, uint256 otherWeight) private view returns (bool) {
        return 2 * (acceptWeight + otherWeight) < _draws;
    }

    /// @dev Where the jurors' words of an appeal's attempt live (index < 128).
    function _slot(uint256 index, uint256 attempt) private pure returns (uint256) {
        return index + 128 * attempt;
    }

    function _requireWindowClosed(uint256 taskId, uint256 round, uint256 voteEnd) private view {
        uint256 closesAt = voteEnd + _window;
        if (block.timestamp < closesAt) revert AppealWindowOpen(taskId, round, closesAt, block.timestamp);
    }

    /// @dev The reveals are over: their end passed, or every committed draw revealed (once commits closed).
    function _revealClosed(Appeal memory m) private view returns (bool) {
        return block.timestamp >= m.revealEnd || uint256(m.acceptWeight) + m.otherWeight == m.committedWeight;
    }

    /// @dev Takes the bond from the caller; a token that delivers less is refused.
    function _pull(uint256 amount) private {
        uint256 before = _token.balanceOf(address(this));
        _token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 afterwards = _token.balanceOf(address(this));
        if (afterwards != before + amount) {
            revert TokenTransferShortfall(amount, afterwards > before ? afterwards - before : 0);
        }
    }

    function _requireExact(uint256 got, uint256 wanted) private pure {
        if (got != wanted) revert TokenTransferShortfall(wanted, got);
    }

    function _isAccept(uint256 verdict) private pure returns (uint256) {
        return verdict == _ACCEPT ? 1 : 0;
    }

    function _commitment(uint256 taskId, uint256 round, uint256 index, address juror, uint8 verdict, bytes32 salt)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, round, index, juror, verdict, salt));
    }
    // slither-disable-end timestamp
}
