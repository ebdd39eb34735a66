// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAttestationRegistry} from "./IAttestationRegistry.sol";

/// @title IAppealCourt
/// @notice Appeals: the on-chain answer to a wrong decision of a round's validators (docs/protocol.md,
/// "Appeals").
///
/// Window. A submission's decision is final when its round's ballot closes; its round's settlement (and
/// that of the round's validators) waits until `voteEnd + appealWindow` (`voteEnd`: the ballot's stored end
/// of the model vote). Until then anyone may appeal one decided submission of a finalised round
/// ({appeal}), posting the deployment's `bond` in the token.
///
/// Draw. The appeal's seed is the hash of a block mined after the filing (`seedBlock = filing block + 1`,
/// read by {drawAppeal}, re-armed if more than 256 blocks late, like the escrow's round seed). The court
/// then draws `appealDraws` K_a points on the task's line of weights as it stood in the round (the
/// validators active in the round, each its join-time allocation in units of the task's minimum validator
/// stake; {IAttestationRegistry-lineOf}), with the committees' formula and the submission's index:
/// `x_d = uint64(uint256(keccak256(abi.encode(seed, index, d / 4))) >> (64 * (d % 4))) % W_r`. A validator's
/// multiplicity m is the number of points in its interval. Drawn validators commit
/// `keccak256(abi.encode(taskId, round, index, juror, verdict, salt))` until `commitEnd` and reveal it until
/// `revealEnd` (each phase closes early once every draw has committed / every committed draw has revealed);
/// a revealed verdict weighs m.
///
/// Decision ({settleAppeal}, once the reveals closed). Sides: ACCEPT against not-ACCEPT (REJECT and
/// UNAVAILABLE both slash a trainer). The appeal overturns the original decision iff at least
/// `ceil(K_a / 2)` draws revealed and the side opposite to the original holds more than half of the
/// revealed weight. Overturned: the bond goes back to the appellant; the submission settles as REJECT
/// when it had been accepted (the escrow slashes the trainer) and as undecided (no escrow pay, no slash)
/// when it had been rejected, its trainer being owed by the court, out of the losers' slashes, what it
/// would have earned accepted (diluted and capped: see `_reward`). Upheld with the quorum: the bond is
/// split per winning revealed draw (floor; the dust back to the appellant). Without the quorum: the
/// appellant gets back only the revealed draws' share of the bond (`bond x revealed / K_a`), the rest is
/// burned, and the decision may be appealed again: a new attempt ({appeal}), before the same committee (the
/// first attempt's seed and W_r: silence cannot re-draw it), whose phases open at the filing (its
/// AppealDrawn comes from {appeal}, and {drawAppeal} answers `AlreadyDrawn`).
///
/// Jurors ({settleJuror}, per validator and round, in batches of appealed indices, after every appeal of
/// the round is decided and its window closed, and before the escrow can settle that validator for the
/// round): for each appeal of the batch, a validator loses `slashBps` of what is left of its allocation
/// when the appeal overturned the decision and its revealed verdict (original or appeal) was on the losing
/// side; a drawn juror that did not reveal in some attempt of an appeal (the last or one it replaced, whatever
/// that attempt's outcome) loses `silenceBps`, once a round whatever the number of appeals and attempts it
/// was silent in, and never when its allocation was below the task's minimum stake at its first batch of the
/// round (where it could not reveal); it is still paid a winning draw of the last attempt. A slash of an overturned appeal pays the trainer it wronged first (up to what it is owed),
/// then `rewardBps` of the rest to the appellant (the StakeManager's {IStakeManager-seize}); the rest is
/// burned. A winning juror of an upheld appeal is credited its draws times the bond's share per draw.
/// Credits are claimed with {claim}.
///
/// Hooks. The AttestationRegistry's `decisionOf` (what the escrow settles a submission on) and
/// `validatorOutcome` (what it settles a validator on) consult {settledDecision} and {validatorGate}: they
/// revert while the window is open or an appeal of the round is pending, and apply the appeals' results.
interface IAppealCourt {
    /// @notice One appeal (per task, round and submission index).
    /// @param appellant who filed it (0: none)
    /// @param seedBlock the block whose hash is the seed
    /// @param original the decision appealed
    /// @param decided whether {settleAppeal} ran
    /// @param overturned whether the appeal overturned the decision
    /// @param attempt how many appeals of the decision ended without the reveal quorum before this one
    /// @param seed the draw's seed (0 until drawn; a new attempt keeps the first attempt's, and `seedBlock`)
    /// @param commitEnd, revealEnd the phases' ends (deadline, or the early close); 0 until drawn
    /// @param totalWeight W_r, the weight of the round's validators (a new attempt keeps the first's)
    /// @param committedWeight, acceptWeight, otherWeight draws committed, revealed ACCEPT, revealed otherwise
    /// @param bond the bond posted
    /// @param perDraw an upheld appeal's pay per winning draw
    /// @param victimOwed what the court still owes the wronged trainer of an overturned rejection
    struct Appeal {
        address appellant;
        uint40 seedBlock;
        IAttestationRegistry.Verdict original;
        bool decided;
        bool overturned;
        uint8 attempt;
        bytes32 seed;
        uint40 commitEnd;
        uint40 revealEnd;
        uint64 totalWeight;
        uint16 committedWeight;
        uint16 acceptWeight;
        uint16 otherWeight;
        uint128 bond;
        uint128 perDraw;
        uint128 victimOwed;
    }

    /// @notice A round's appeals: the appealed indices (bit i), how many are not decided yet, and the
    /// overturned decisions packed like a decision vector (`fields`: both bits of each overturned field,
    /// `finals`: its final verdict).
    struct RoundAppeals {
        uint128 appealed;
        uint8 pending;
        uint256 fields;
        uint256 finals;
    }

    /// @notice What {settleJuror} did with one validator on one appeal.
    enum JurorOutcome {
        None,
        Paid,
        Slashed
    }

    event AppealFiled(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 indexed index,
        address appellant,
        IAttestationRegistry.Verdict original,
        uint256 bond,
        uint256 seedBlock
    );
    event AppealSeedArmed(uint256 indexed taskId, uint256 indexed round, uint256 indexed index, uint256 seedBlock);
    event AppealDrawn(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 indexed index,
        bytes32 seed,
        uint256 totalWeight,
        uint256 commitEnd,
        uint256 revealEnd
    );
    event AppealCommitted(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 indexed index,
        address juror,
        bytes32 commitment,
        uint256 weight
    );
    event AppealRevealed(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 indexed index,
        address juror,
        IAttestationRegistry.Verdict verdict,
        bytes32 salt,
        uint256 weight
    );
    /// @notice The appeal was decided (the revealed weights are in {appealOf}). `paidBack` went back to the
    /// appellant; `perDraw` is an upheld appeal's pay per winning draw; `victimOwed` what the wronged trainer
    /// of an overturned rejection is owed; `burned` the unrevealed draws' share of the bond of an appeal that
    /// missed the reveal quorum.
    event AppealDecided(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 indexed index,
        bool overturned,
        IAttestationRegistry.Verdict finalVerdict,
        uint256 paidBack,
        uint256 perDraw,
        uint256 victimOwed,
        uint256 burned
    );
    /// @notice `validator`'s part in the appeal was settled: `slashed` taken from its allocation, of which
    /// `toVictim` and `toAppellant` were credited (the rest burned); or `paid` credited to it.
    event JurorSettled(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 indexed index,
        address validator,
        JurorOutcome outcome,
        uint256 slashed,
        uint256 toVictim,
        uint256 toAppellant,
        uint256 paid
    );
    /// @notice A batch of the round's appeals was settled for `validator` (once every appealed index is,
    /// the escrow may settle it: {jurorSettled}). `slashed` (the sum of the batch's JurorSettled slashes) is
    /// taken from its allocation in this transaction by one {IStakeManager-seize}, of which the court keeps
    /// `kept` (the JurorSettled credits) and the rest is burned.
    event JurorRoundSettled(
        uint256 indexed taskId, uint256 indexed round, address indexed validator, uint256 slashed, uint256 kept
    );
    /// @notice `account` withdrew its credits at the court.
    event CourtClaimed(address indexed account, uint256 amount);

    error InvalidAppealParams(
        uint256 window,
        uint256 draws,
        uint256 commitDuration,
        uint256 revealDuration,
        uint256 slashBps,
        uint256 rewardBps,
        uint256 silenceBps
    );
    error InvalidBond(uint256 bond);
    error NotAppealedIndices(uint256 taskId, uint256 round, uint256 indices);
    error RoundNotFinalized(uint256 taskId, uint256 round);
    error NotDecided(uint256 taskId, uint256 round, uint256 index);
    error AppealWindowClosed(uint256 taskId, uint256 round, uint256 closesAt, uint256 timestamp);
    error AppealWindowOpen(uint256 taskId, uint256 round, uint256 closesAt, uint256 timestamp);
    error AlreadyAppealed(uint256 taskId, uint256 round, uint256 index);
    error NoAppeal(uint256 taskId, uint256 round, uint256 index);
    error TokenTransferShortfall(uint256 expected, uint256 received);
    error SeedTooEarly(uint256 seedBlock, uint256 blockNumber);
    error AlreadyDrawn(uint256 taskId, uint256 round, uint256 index);
    error NotDrawn(uint256 taskId, uint256 round, uint256 index);
    error CommitPhaseClosed(uint256 taskId, uint256 round, uint256 index, uint256 commitEnd, uint256 timestamp);
    error NotJuror(uint256 taskId, uint256 round, uint256 index, address account);
    /// @notice A juror commitment must be above 7: the words 1..7 are revealed verdicts (the verdict, and 4 for
    /// a silence in an earlier attempt), so a commitment among them would read as revealed.
    error InvalidCommitment(bytes32 commitment);
    error AlreadyCommitted(uint256 taskId, uint256 round, uint256 index, address juror);
    error RevealPhaseNotOpen(
        uint256 taskId, uint256 round, uint256 index, uint256 opensAt, uint256 closesAt, uint256 timestamp
    );
    error NotCommitted(uint256 taskId, uint256 round, uint256 index, address juror);
    error AlreadyRevealed(uint256 taskId, uint256 round, uint256 index, address juror);
    error CommitmentMismatch(bytes32 committed, bytes32 computed);
    error InvalidVerdict(uint256 verdict);
    error StakeTooLow(uint256 taskId, address account, uint256 allocated, uint256 required);
    error AppealOpen(uint256 taskId, uint256 round, uint256 index, uint256 revealEnd, uint256 timestamp);
    error AlreadyDecidedAppeal(uint256 taskId, uint256 round, uint256 index);
    error AppealPending(uint256 taskId, uint256 round, uint256 index);
    error AppealsPending(uint256 taskId, uint256 round, uint256 pending);
    error JurorUnsettled(uint256 taskId, uint256 round, address validator);
    error JurorAlreadySettled(uint256 taskId, uint256 round, address validator);
    error NoAppeals(uint256 taskId, uint256 round);
    error NothingToClaim(address account);

    /// @notice Appeal the decision on submission `index` of finalised `round` (within the window), posting the
    /// bond (approve the court first). A new attempt (the last one missed the reveal quorum) is drawn at once,
    /// with the first attempt's seed: AppealFiled (its `seedBlock` the first's) then AppealDrawn.
    function appeal(uint256 taskId, uint256 round, uint256 index) external;

    /// @notice Read the appeal's seed (after its seed block); false (and re-armed) if more than 256 blocks late.
    function drawAppeal(uint256 taskId, uint256 round, uint256 index) external returns (bool drawn);

    /// @notice Commit a drawn juror's verdict (commit phase).
    function commitAppeal(uint256 taskId, uint256 round, uint256 index, bytes32 commitment) external;

    /// @notice Reveal the committed verdict (1 ACCEPT, 2 REJECT, 3 UNAVAILABLE) and salt (reveal phase).
    function revealAppeal(uint256 taskId, uint256 round, uint256 index, uint8 verdict, bytes32 salt) external;

    /// @notice Decide the appeal once its reveals closed (permissionless, once).
    function settleAppeal(uint256 taskId, uint256 round, uint256 index) external;

    /// @notice Settle `validator`'s part in the appeals of `round` whose indices are the set bits of
    /// `indices` (a batch: a subset of the appealed indices, none settled for it yet; `NotAppealedIndices`,
    /// `JurorAlreadySettled`), permissionless, after every appeal of the round is decided and the round's
    /// appeal window has closed (`AppealWindowOpen` before, so that no later appeal can find a juror already
    /// settled). Its cost is O(batch x K_a): a keeper splits the appealed indices into batches that fit its
    /// gas budget. The validator is settled for the round once every appealed index is.
    function settleJuror(uint256 taskId, uint256 round, address validator, uint256 indices) external;

    /// @notice Withdraw the caller's credits.
    function claim() external returns (uint256 amount);

    /// @notice The decision the escrow settles submission `index` on: `decided` (the ballot's) unless an
    /// appeal overturned it (REJECT for an overturned acceptance, NONE for an overturned rejection, whose
    /// trainer the court pays). Reverts while the window of the round (ballot closed at `voteEnd`) is open or
    /// an appeal of it is pending.
    function settledDecision(uint256 taskId, uint256 round, uint256 index, uint256 decided, uint256 voteEnd)
        external
        view
        returns (IAttestationRegistry.Verdict);

    /// @notice For the escrow's settlement of `validator` in `round`: reverts while the window is open, an
    /// appeal of the round is pending or `validator` is not settled by {settleJuror}; returns the round's
    /// overturned fields and their final verdicts (to apply to the decisions).
    function validatorGate(uint256 taskId, uint256 round, address validator, uint256 voteEnd)
        external
        view
        returns (uint256 fields, uint256 finals);

    function appealOf(uint256 taskId, uint256 round, uint256 index) external view returns (Appeal memory);
    function roundAppealsOf(uint256 taskId, uint256 round) external view returns (RoundAppeals memory);
    /// @notice `juror`'s word on the appeal's last attempt: its commitment, or its verdict (1..3) once revealed.
    function jurorOf(uint256 taskId, uint256 round, uint256 index, address juror)
        external
        view
        returns (bytes32 word, bool revealed);
    /// @notice `validator`'s draws in the appeal's committee (0 before the draw).
    function drawsOf(uint256 taskId, uint256 round, uint256 index, address validator) external view returns (uint256);
    /// @notice Whether every appealed index of the round is settled for `validator`.
    function jurorSettled(uint256 taskId, uint256 round, address validator) external view returns (bool);
    /// @notice The appealed indices already settled for `validator` (bit i: index i).
    function jurorSettledIndices(uint256 taskId, uint256 round, address validator) external view returns (uint256);
    function owedTo(address account) external view returns (uint256);
    function commitmentFor(uint256 taskId, uint256 round, uint256 index, address juror, uint8 verdict, bytes32 salt)
        external
        pure
        returns (bytes32);
    /// @notice (window, draws K_a, bond, commitDuration, revealDuration, slashBps, rewardBps, silenceBps)
    function parameters()
        external
        view
        returns (uint256, uint256, uint256, uint256, uint256, uint256, uint256, uint256);
    function taskEscrow() external view returns (address);
}
