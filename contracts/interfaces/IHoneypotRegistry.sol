// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAttestationRegistry} from "./IAttestationRegistry.sol";
import {ITaskEscrow} from "./ITaskEscrow.sol";

/// @title IHoneypotRegistry
/// @notice Honeypots: known-bad submissions a task's initiator plants to catch validators that accept without
/// checking.
///
/// Before round r opens (during round r-1, or before the task's start for round 0), the initiator commits
/// `commitment = keccak256(abi.encode(taskId, r, submitter, salt))` ({commitHoneypot}; at most one per round)
/// and submits known-bad work through a trainer identity of its own (`submitter`), by the ordinary
/// {ITaskEscrow-submitWork}. Once the round's ballot is closed (model vote over), the preimage is revealed
/// ({revealHoneypot}, naming the submission's index) with the submitter's consent: sent by the submitter
/// itself, or by anyone with the submitter's signature over {consentDigest} ({revealHoneypotFor}). So the
/// initiator can name only a trainer that agreed to be its bait, never an honest trainer whose good work a
/// cartel rejected. Then {slashLazy} (permissionless, once per validator and honeypot) slashes
/// `lazySlashBps` of a validator's allocation to the task if and only if the honeypot's ballot decision is
/// REJECT, where the deployment has an AppealCourt the court-settled decision is REJECT too (the appeal
/// window closed, no appeal of it pending, none overturned it), and that validator's revealed verdict on it
/// is ACCEPT (UNAVAILABLE is never slashed).
///
/// Trust: a REJECT is a two-thirds vote, not a proof. A cartel holding two thirds of the honeypot's weight
/// (or draws) can reject the initiator's own bait even when it submitted good work, and the honest validators
/// that accepted it are then slashed unless someone appeals within the round's appeal window (the reveal may
/// come after it). Without an AppealCourt nothing on chain protects an honest minority from such a cartel.
///
/// Window: reveals and lazy slashes are open while the task is active and, after it ended, until its end
/// plus the deployment's settlement grace ({ITaskEscrow-settlementGrace}) — exactly the time during which a
/// validator's allocation to the task is locked anyway ({ITaskEscrow-lockedUntil} is type(uint256).max
/// while the task is active and at least `endedAt + settlementGrace` after it). So no validator can
/// deallocate before the window closes, and the window adds no lock of its own. A commitment not revealed
/// by then expires.
interface IHoneypotRegistry {
    /// @notice What the registry knows about round `round`'s honeypot.
    /// @param commitment the initiator's commitment (0: none)
    /// @param submitter the honeypot's trainer identity (0 until revealed)
    /// @param index the honeypot's submission index in the round (valid once revealed)
    /// @param revealed whether the preimage was revealed
    struct Honeypot {
        bytes32 commitment;
        address submitter;
        uint8 index;
        bool revealed;
    }

    /// @notice The initiator of `taskId` committed to a honeypot in `round`.
    event HoneypotCommitted(uint256 indexed taskId, uint256 indexed round, bytes32 commitment);

    /// @notice Round `round`'s honeypot was revealed: submission `index`, by `submitter`, whose decision was
    /// `decision` (only REJECT lets {slashLazy} slash).
    event HoneypotRevealed(
        uint256 indexed taskId,
        uint256 indexed round,
        uint256 index,
        address submitter,
        bytes32 salt,
        IAttestationRegistry.Verdict decision
    );

    /// @notice `validator` had revealed ACCEPT on round `round`'s REJECTED honeypot: `slashed`, `bps` basis
    /// points of its allocation to `taskId`, was taken from it (the StakeManager's Slashed event of the same
    /// transaction).
    event LazySlashed(
        uint256 indexed taskId, uint256 indexed round, address indexed validator, uint256 slashed, uint256 bps
    );

    /// @notice A commitment of zero.
    error ZeroCommitment();

    /// @notice Only the task's initiator may commit a honeypot.
    error NotInitiator(uint256 taskId, address caller);

    /// @notice The task is `status`, not Active.
    error TaskNotActive(uint256 taskId, ITaskEscrow.TaskStatus status);

    /// @notice The task has rounds 0 to `numRounds - 1`; `round` is not one of them.
    error NoSuchRound(uint256 taskId, uint256 round, uint256 numRounds);

    /// @notice Round `round` has opened (the task is in round `current`, which opened or opens at
    /// `roundStart`; `timestamp` is now): its commitment had to come before.
    error RoundOpened(uint256 taskId, uint256 round, uint256 current, uint256 roundStart, uint256 timestamp);

    /// @notice `round` already has a honeypot commitment.
    error AlreadyCommitted(uint256 taskId, uint256 round);

    /// @notice `round` has no honeypot commitment.
    error NoHoneypot(uint256 taskId, uint256 round);

    /// @notice `round`'s honeypot is already revealed.
    error AlreadyRevealed(uint256 taskId, uint256 round);

    /// @notice `round`'s honeypot is not revealed.
    error NotRevealed(uint256 taskId, uint256 round);

    /// @notice The preimage hashes to `computed`, the commitment is `committed`.
    error CommitmentMismatch(bytes32 committed, bytes32 computed);

    /// @notice The ballot of `round` is not closed yet (reveals come after the model vote).
    error BallotNotClosed(uint256 taskId, uint256 round);

    /// @notice The window closed at `windowEnd` (the task's end plus the settlement grace); `timestamp` is now.
    error WindowClosed(uint256 taskId, uint256 windowEnd, uint256 timestamp);

    /// @notice Submission `index` of `round` is by `trainer`, not by the revealed `submitter`.
    error NotTheSubmitter(uint256 taskId, uint256 round, uint256 index, address trainer, address submitter);

    /// @notice The honeypot's decision is `decision`, not REJECT: nobody is slashed for it.
    error HoneypotNotRejected(uint256 taskId, uint256 round, IAttestationRegistry.Verdict decision);

    /// @notice `validator`'s revealed verdict on the honeypot is `verdict` (None: it did not reveal), not ACCEPT.
    error NotLazy(uint256 taskId, uint256 round, address validator, IAttestationRegistry.Verdict verdict);

    /// @notice `validator` was already slashed for `round`'s honeypot.
    error AlreadySlashed(uint256 taskId, uint256 round, address validator);

    /// @notice The reveal of `round`'s honeypot by `submitter` lacks its consent: `signer` (the sender, or the
    /// signature's signer, 0 for a malformed signature) is not `submitter`.
    error NoConsent(uint256 taskId, uint256 round, address submitter, address signer);

    /// @notice A slash fraction outside 1..10000 basis points was given at deployment.
    error InvalidSlashBps(uint256 bps);

    /// @notice The deployment's settlement grace is 0, so no honeypot could be revealed or slashed once its
    /// task has ended (its last round's ballot closes when the task can end): this deployment takes no
    /// honeypot commitments (round `round` of `taskId` was refused).
    error NoSettlementGrace(uint256 taskId, uint256 round);

    /// @notice Commit to a honeypot in round `round` of `taskId` (its initiator only, once per round, while
    /// the task is active and `round` has not opened: a later round, or the current one before its start;
    /// never on a deployment whose settlement grace is 0: {NoSettlementGrace}).
    /// So no submission of the round exists when it is committed to.
    function commitHoneypot(uint256 taskId, uint256 round, bytes32 commitment) external;

    /// @notice Reveal `round`'s honeypot, sent by `submitter` itself, once its ballot is closed and within the
    /// window: `keccak256(abi.encode(taskId, round, submitter, salt))` must be the commitment and submission
    /// `index` of the round must be `submitter`'s (the index is not known when committing: order of arrival).
    function revealHoneypot(uint256 taskId, uint256 round, uint256 index, address submitter, bytes32 salt)
        external;

    /// @notice {revealHoneypot} sent by anyone, with `consent`: `submitter`'s 65-byte ECDSA signature of the
    /// EIP-191 personal message {consentDigest}`(taskId, round, salt)`.
    function revealHoneypotFor(
        uint256 taskId,
        uint256 round,
        uint256 index,
        address submitter,
        bytes32 salt,
        bytes calldata consent
    ) external;

    /// @notice What a bait signs to consent to the reveal of `round`'s honeypot:
    /// `keccak256(abi.encode(block.chainid, address(this), taskId, round, salt))`.
    function consentDigest(uint256 taskId, uint256 round, bytes32 salt) external view returns (bytes32);

    /// @notice Slash `lazySlashBps` of `validator`'s allocation to `taskId` (permissionless, once per validator
    /// and honeypot, within the window) when `round`'s revealed honeypot was decided REJECT (with an
    /// AppealCourt: by the ballot and by the court, so this reverts like {IAttestationRegistry-decisionOf}
    /// while the round's appeal window is open or an appeal of the honeypot is pending) and `validator`
    /// revealed ACCEPT on it.
    /// @return slashed The amount slashed (less than asked only if the allocation is smaller).
    function slashLazy(uint256 taskId, uint256 round, address validator) external returns (uint256 slashed);

    /// @notice Round `round`'s honeypot record.
    function honeypotOf(uint256 taskId, uint256 round) external view returns (Honeypot memory);

    /// @notice Whether `validator` was slashed for `round`'s honeypot.
    function lazySlashed(uint256 taskId, uint256 round, address validator) external view returns (bool);

    /// @notice When reveals and lazy slashes of `taskId` stop: type(uint256).max while the task is active,
    /// else its end plus the settlement grace.
    function windowEnd(uint256 taskId) external view returns (uint256);

    /// @notice `keccak256(abi.encode(taskId, round, submitter, salt))`.
    function commitmentFor(uint256 taskId, uint256 round, address submitter, bytes32 salt)
        external
        pure
        returns (bytes32);

    /// @notice The fraction of its allocation, in basis points, a lazy validator loses per honeypot (set at
    /// deployment: every task's validators know it before they join).
    function lazySlashBps() external view returns (uint256);

    /// @notice The TaskEscrow whose tasks this registry serves.
    function taskEscrow() external view returns (address);
}
