// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IAttestationRegistry} from "./interfaces/IAttestationRegistry.sol";
import {IHoneypotRegistry} from "./interfaces/IHoneypotRegistry.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {ITaskEscrow} from "./interfaces/ITaskEscrow.sol";

/// @title HoneypotRegistry
/// @notice Honeypot commitments, reveals and the slashing of validators that accepted them (see
/// {IHoneypotRegistry}). It reads the TaskEscrow and the AttestationRegistry and is the StakeManager's second
/// authorised slasher; it holds no tokens.
contract HoneypotRegistry is IHoneypotRegistry {
    // slither-disable-start timestamp
    // (a round's opening and the window's end are block.timestamp deadlines by design, as in the escrow)
    uint256 private constant _BPS = 10_000;

    ITaskEscrow private immutable _escrow;
    IAttestationRegistry private immutable _registry;
    IStakeManager private immutable _stakes;
    uint256 private immutable _lazySlashBps;
    /// @dev The escrow's settlement grace is an immutable of its own: whether it is 0, read once.
    bool private immutable _noGrace;
    /// @dev Whether the AttestationRegistry has an AppealCourt (an immutable of its own), read once.
    bool private immutable _hasCourt;

    mapping(uint256 taskId => mapping(uint256 round => Honeypot)) private _honeypots;
    mapping(uint256 taskId => mapping(uint256 round => mapping(address validator => bool))) private _slashed;

    /// @param escrow_ the deployment's TaskEscrow (deployed before this registry; its StakeManager and
    /// AttestationRegistry are read from it)
    /// @param lazySlashBps_ fraction of its allocation a validator loses per honeypot it accepted (1..10000)
    constructor(ITaskEscrow escrow_, uint256 lazySlashBps_) {
        if (lazySlashBps_ == 0 || lazySlashBps_ > _BPS) revert InvalidSlashBps(lazySlashBps_);
        _escrow = escrow_;
        _registry = IAttestationRegistry(escrow_.attestationRegistry());
        _stakes = IStakeManager(escrow_.stakeManager());
        _lazySlashBps = lazySlashBps_;
        _noGrace = escrow_.settlementGrace() == 0;
        _hasCourt = _registry.appealCourt() != address(0);
    }

    /// @inheritdoc IHoneypotRegistry
    function commitHoneypot(uint256 taskId, uint256 round, bytes32 commitment) external {
        if (commitment == 0) revert ZeroCommitment();
        if (_noGrace) revert NoSettlementGrace(taskId, round);
        ITaskEscrow.TaskState memory s = _escrow.taskState(taskId);
        if (s.status != ITaskEscrow.TaskStatus.Active) revert TaskNotActive(taskId, s.status);
        ITaskEscrow.TaskConfig memory config = _escrow.taskConfig(taskId);
        if (msg.sender != config.initiator) revert NotInitiator(taskId, msg.sender);
        if (round >= config.numRounds) revert NoSuchRound(taskId, round, config.numRounds);
        // Round r opens when round r-1 is finalised (round 0 at the task's start): committing stops then,
        // before any of its submissions exists.
        if (round < s.round || (round == s.round && block.timestamp >= s.roundStart)) {
            revert RoundOpened(taskId, round, s.round, s.roundStart, block.timestamp);
        }
        Honeypot storage honeypot = _honeypots[taskId][round];
        if (honeypot.commitment != 0) revert AlreadyCommitted(taskId, round);
        honeypot.commitment = commitment;
        emit HoneypotCommitted(taskId, round, commitment);
    }

    /// @inheritdoc IHoneypotRegistry
    function revealHoneypot(uint256 taskId, uint256 round, uint256 index, address submitter, bytes32 salt)
        external
    {
        if (msg.sender != submitter) revert NoConsent(taskId, round, submitter, msg.sender);
        _reveal(taskId, round, index, submitter, salt);
    }

    /// @inheritdoc IHoneypotRegistry
    function revealHoneypotFor(
        uint256 taskId,
        uint256 round,
        uint256 index,
        address submitter,
        bytes32 salt,
        bytes calldata consent
    ) external {
        // EIP-191 personal message of the 32-byte digest (OpenZeppelin's MessageHashUtils.toEthSignedMessageHash)
        bytes32 digest =
            keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", consentDigest(taskId, round, salt)));
        // slither-disable-next-line unused-return the error's argument adds nothing to the signer and the error
        (address signer, ECDSA.RecoverError failure,) = ECDSA.tryRecover(digest, consent);
        if (failure != ECDSA.RecoverError.NoError || signer != submitter) {
            revert NoConsent(taskId, round, submitter, signer);
        }
        _reveal(taskId, round, index, submitter, salt);
    }

    /// @inheritdoc IHoneypotRegistry
    function slashLazy(uint256 taskId, uint256 round, address validator) external returns (uint256 slashed) {
        Honeypot memory h = _honeypots[taskId][round];
        if (!h.revealed) revert NotRevealed(taskId, round);
        IAttestationRegistry.Verdict decision = _verdictAt(_requireWindow(taskId, round), h.index);
        // With a court, the ballot's REJECT must also be the settled decision (this call reverts while the
        // round's appeal window is open or an appeal of the honeypot is pending); the raw REJECT is required as
        // well, so a court majority (> 1/2, weaker than the ballot's 2/3) cannot turn an ACCEPT into a slash.
        if (decision == IAttestationRegistry.Verdict.Reject && _hasCourt) {
            decision = _registry.decisionOf(taskId, round, h.index);
        }
        if (decision != IAttestationRegistry.Verdict.Reject) revert HoneypotNotRejected(taskId, round, decision);
        (bytes32 word, bool revealed) = _registry.verdictsOf(taskId, round, validator);
        IAttestationRegistry.Verdict verdict =
            revealed ? _verdictAt(uint256(word), h.index) : IAttestationRegistry.Verdict.None;
        if (verdict != IAttestationRegistry.Verdict.Accept) revert NotLazy(taskId, round, validator, verdict);
        mapping(address => bool) storage done = _slashed[taskId][round];
        if (done[validator]) revert AlreadySlashed(taskId, round, validator);
        done[validator] = true;
        uint256 amount = _stakes.allocationOf(validator, taskId) * _lazySlashBps / _BPS;
        slashed = _stakes.slash(validator, taskId, amount);
        // The StakeManager is the deployment's own (immutable); every state write precedes the call.
        // slither-disable-next-line reentrancy-events the event reports the amount the call slashed
        emit LazySlashed(taskId, round, validator, slashed, _lazySlashBps);
    }

    /// @inheritdoc IHoneypotRegistry
    function honeypotOf(uint256 taskId, uint256 round) external view returns (Honeypot memory) {
        return _honeypots[taskId][round];
    }

    /// @inheritdoc IHoneypotRegistry
    function lazySlashed(uint256 taskId, uint256 round, address validator) external view returns (bool) {
        return _slashed[taskId][round][validator];
    }

    /// @inheritdoc IHoneypotRegistry
    function windowEnd(uint256 taskId) external view returns (uint256) {
        return _windowEnd(taskId);
    }

    /// @inheritdoc IHoneypotRegistry
    function commitmentFor(uint256 taskId, uint256 round, address submitter, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, round, submitter, salt));
    }

    /// @inheritdoc IHoneypotRegistry
    function consentDigest(uint256 taskId, uint256 round, bytes32 salt) public view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), taskId, round, salt));
    }

    /// @inheritdoc IHoneypotRegistry
    function lazySlashBps() external view returns (uint256) {
        return _lazySlashBps;
    }

    /// @inheritdoc IHoneypotRegistry
    function taskEscrow() external view returns (address) {
        return address(_escrow);
    }

    /// @dev Opens round `round`'s honeypot at submission `index` (the submitter's consent was checked).
    function _reveal(uint256 taskId, uint256 round, uint256 index, address submitter, bytes32 salt) private {
        Honeypot storage honeypot = _honeypots[taskId][round];
        _requireOpening(taskId, round, honeypot.commitment, honeypot.revealed, submitter, salt);
        uint256 decisions = _requireWindow(taskId, round);
        // slither-disable-next-line unused-return only the submission's trainer is compared
        (address trainer,,) = _escrow.submissionOf(taskId, round, index);
        if (trainer != submitter || submitter == address(0)) {
            revert NotTheSubmitter(taskId, round, index, trainer, submitter);
        }
        honeypot.submitter = submitter;
        // A submission index is below 128 (maxTrainers): a submission by `submitter` was found at it.
        honeypot.index = uint8(index);
        honeypot.revealed = true;
        emit HoneypotRevealed(taskId, round, index, submitter, salt, _verdictAt(decisions, index));
    }

    /// @dev Reverts unless the round has an unrevealed `commitment` that (`submitter`, `salt`) opens.
    function _requireOpening(
        uint256 taskId,
        uint256 round,
        bytes32 commitment,
        bool revealed,
        address submitter,
        bytes32 salt
    ) private pure {
        if (commitment == 0) revert NoHoneypot(taskId, round);
        if (revealed) revert AlreadyRevealed(taskId, round);
        bytes32 computed = keccak256(abi.encode(taskId, round, submitter, salt));
        if (computed != commitment) revert CommitmentMismatch(commitment, computed);
    }

    /// @dev Reverts unless `round`'s ballot is closed and the window is open; returns the round's decisions
    /// (packed like a verdict vector).
    function _requireWindow(uint256 taskId, uint256 round) private view returns (uint256 decisions) {
        bool closed;
        // slither-disable-next-line unused-return the window needs only whether the ballot closed and its decisions
        (closed,,,, decisions) = _registry.outcome(taskId, round);
        if (!closed) revert BallotNotClosed(taskId, round);
        uint256 end = _windowEnd(taskId);
        if (block.timestamp >= end) revert WindowClosed(taskId, end, block.timestamp);
    }

    /// @dev The verdict at `index` of a packed verdict (or decision) vector.
    function _verdictAt(uint256 word, uint256 index) private pure returns (IAttestationRegistry.Verdict) {
        return IAttestationRegistry.Verdict((word >> (2 * index)) & 3);
    }

    /// @dev type(uint256).max while the task is active, else its end plus the settlement grace: the earliest
    /// time {ITaskEscrow-lockedUntil} can release a validator's allocation to a task that had a ballot.
    function _windowEnd(uint256 taskId) private view returns (uint256) {
        ITaskEscrow.TaskState memory s = _escrow.taskState(taskId);
        if (s.status == ITaskEscrow.TaskStatus.Active) return type(uint256).max;
        return uint256(s.endedAt) + _escrow.settlementGrace();
    }
    // slither-disable-end timestamp
}
