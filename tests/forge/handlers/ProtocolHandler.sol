// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AttestationRegistry} from "../../../contracts/AttestationRegistry.sol";
import {RewardDistributor} from "../../../contracts/RewardDistributor.sol";
import {StakeManager} from "../../../contracts/StakeManager.sol";
import {TaskEscrow} from "../../../contracts/TaskEscrow.sol";
import {IAttestationRegistry} from "../../../contracts/interfaces/IAttestationRegistry.sol";
import {ITaskEscrow} from "../../../contracts/interfaces/ITaskEscrow.sol";
import {BurnBlockToken} from "../../../contracts/test/BurnBlockToken.sol";
import {Vm} from "../utils/Vm.sol";

/// @title ProtocolHandler
/// @notice What the invariant campaign calls: every money-moving function of the protocol, by six stakers
/// and one initiator (this contract), with inputs bounded to what can succeed most of the time, each
/// action moving the clock or the block only as far as it needs. Ghost totals (solmate/OZ style) count
/// what went in and out; a broken rule seen inside an action is counted in a `ghost_*Violations` counter
/// (a failing check inside a handler would only be a discarded revert), which the invariants read.
///
/// The token refuses burns when `toggleBurn` says so, so that slashes kept as `unburned` and `flushBurn`
/// are part of the campaign.
contract ProtocolHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;
    uint256 internal constant MAX_TASKS = 3;
    uint128 internal constant MIN_STAKE = 1e20;
    string internal constant CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

    BurnBlockToken public immutable token;
    StakeManager public immutable stakes;
    RewardDistributor public immutable distributor;
    AttestationRegistry public immutable registry;
    TaskEscrow public immutable escrow;
    uint256 public immutable grace;

    address[] public actors;
    uint256[] public tasks;
    uint256 public currentTime;
    uint256 public currentBlock;

    /// @dev The verdict vector each validator committed, by keccak(task, round, validator); 0 = none.
    mapping(bytes32 key => uint256 verdicts) internal _committed;
    mapping(bytes32 key => bytes32 modelHash) internal _voteCommitted;

    // Ghost totals: every token the handler put in or took out, by kind.
    uint256 public ghost_minted;
    uint256 public ghost_staked;
    uint256 public ghost_withdrawn;
    uint256 public ghost_slashed;
    uint256 public ghost_claimed;
    uint256 public ghost_deposited;
    mapping(uint256 taskId => uint256 amount) public ghost_taskDeposit;
    mapping(uint256 taskId => uint256 amount) public ghost_taskCredited;

    // Rules broken inside an action (each must stay 0).
    uint256 public ghost_lockViolations; // an allocation released while its owner owed a settlement or in its lock
    uint256 public ghost_slashViolations; // a slash other than fraction * allocation, or above it
    uint256 public ghost_creditViolations; // a settlement credited something other than what it owed, or twice

    // How often each action succeeded (for the campaign's summary and the depth it reached).
    mapping(bytes32 action => uint256 count) public calls;

    constructor(
        BurnBlockToken token_,
        StakeManager stakes_,
        RewardDistributor distributor_,
        AttestationRegistry registry_,
        TaskEscrow escrow_
    ) {
        token = token_;
        stakes = stakes_;
        distributor = distributor_;
        registry = registry_;
        escrow = escrow_;
        grace = escrow_.settlementGrace();
        for (uint256 i = 0; i < 6; ++i) {
            actors.push(address(uint160(0x1000 + i)));
        }
        currentTime = block.timestamp;
        currentBlock = block.number;
        token.approve(address(escrow_), type(uint256).max);
    }

    /// @dev Forge may reset the block between calls of a campaign: every action starts where the last
    /// one left the clock, and saves where it leaves it.
    modifier onChainTime() {
        vm.warp(currentTime);
        vm.roll(currentBlock);
        _;
        currentTime = block.timestamp;
        currentBlock = block.number;
    }

    /// @dev Whatever the action credits (settlements, refunds) belongs to `taskId`.
    modifier creditsOf(uint256 taskId) {
        uint256 before = distributor.totalCredits() + ghost_claimed;
        _;
        ghost_taskCredited[taskId] += distributor.totalCredits() + ghost_claimed - before;
    }

    // ------------------------------------------------------------------ views for the invariants

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function taskCount() external view returns (uint256) {
        return tasks.length;
    }

    // ------------------------------------------------------------------ stakes

    function stake(uint256 actorSeed, uint256 amount) external onChainTime {
        address who = _actor(actorSeed);
        amount = _bound(amount, 1, 1e22);
        token.mint(who, amount);
        ghost_minted += amount;
        vm.startPrank(who);
        token.approve(address(stakes), amount);
        stakes.stake(amount);
        vm.stopPrank();
        ghost_staked += amount;
        calls["stake"]++;
    }

    function requestUnstake(uint256 actorSeed, uint256 amount) external onChainTime {
        address who = _actor(actorSeed);
        uint256 free = stakes.freeStakeOf(who);
        if (free == 0) return;
        vm.prank(who);
        stakes.requestUnstake(_bound(amount, 1, free));
        calls["requestUnstake"]++;
    }

    function withdraw(uint256 actorSeed, bool wait) external onChainTime {
        address who = _actor(actorSeed);
        (,, uint256 unbonding, uint256 releaseTime) = stakes.stakeOf(who);
        if (unbonding == 0) return;
        if (wait && block.timestamp < releaseTime) vm.warp(releaseTime);
        vm.prank(who);
        ghost_withdrawn += stakes.withdraw();
        calls["withdraw"]++;
    }

    /// @notice A participant takes its allocation back, sometimes after the settlement grace. Counted as a
    /// violation if it succeeds while the task is active or the participant owes a settlement.
    function deallocate(uint256 actorSeed, uint256 taskSeed, bool afterGrace) external onChainTime {
        if (tasks.length == 0) return;
        address who = _actor(actorSeed);
        uint256 taskId = _task(taskSeed);
        uint256 allocation = stakes.allocationOf(who, taskId);
        if (allocation == 0) return;
        ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
        if (afterGrace && s.status != ITaskEscrow.TaskStatus.Active && block.timestamp < s.endedAt + grace) {
            vm.warp(uint256(s.endedAt) + grace);
        }
        bool locked = _lockedNow(taskId, who, s);
        vm.prank(who);
        stakes.deallocate(taskId, allocation);
        if (locked) ghost_lockViolations++;
        calls["deallocate"]++;
    }

    // ------------------------------------------------------------------ tasks

    function createTask(uint256 seed) external onChainTime {
        if (tasks.length >= MAX_TASKS) return;
        ITaskEscrow.TaskParams memory p;
        p.specHash = keccak256(abi.encode("spec", seed));
        p.specCid = CID;
        p.initialModelHash = keccak256("model 0");
        p.initialModelCid = CID;
        p.numRounds = uint32(1 + seed % 3);
        p.rewardPerRound = uint128(_bound(seed >> 8, 1, 1e18));
        p.validatorShareBps = uint16(_bound(seed >> 72, 0, 10_000));
        p.minTrainerStake = (seed >> 88) % 2 == 0 ? 0 : MIN_STAKE;
        p.minValidatorStake = (seed >> 89) % 2 == 0 ? 0 : MIN_STAKE;
        p.maxTrainers = uint8(1 + (seed >> 90) % 4);
        p.maxValidators = uint8(1 + (seed >> 94) % 4);
        p.quorum = uint8(1 + (seed >> 98) % (p.maxValidators < 2 ? 1 : 2));
        p.submitDuration = 600;
        p.commitDuration = 300;
        p.revealDuration = 300;
        p.voteDuration = 300;
        p.seedDelay = uint32(1 + (seed >> 100) % 3);
        p.sampleRollouts = 4;
        p.sampleSteps = 2;
        p.trainerSlashBps = uint16(_bound(seed >> 104, 0, 10_000));
        p.validatorSlashBps = uint16(_bound(seed >> 120, 0, 10_000));
        p.maxEmptyRounds = uint32((seed >> 136) % 3);
        p.startTime = uint64(block.timestamp + 1 + (seed >> 140) % 120);
        p.noShowSlashBps = (seed >> 180) % 3 == 0 ? 0 : uint16(_bound(seed >> 182, 0, 10_000));
        p.maxNoShows = uint8((seed >> 200) % 3);
        uint256 deposit = uint256(p.rewardPerRound) * p.numRounds;
        token.mint(address(this), deposit);
        ghost_minted += deposit;
        uint256 taskId = escrow.createTask(p);
        tasks.push(taskId);
        ghost_deposited += deposit;
        ghost_taskDeposit[taskId] = deposit;
        calls["createTask"]++;
    }

    function cancelTask(uint256 taskSeed) external onChainTime {
        if (tasks.length == 0) return;
        uint256 taskId = _task(taskSeed);
        _cancel(taskId);
    }

    function _cancel(uint256 taskId) internal creditsOf(taskId) {
        escrow.cancelTask(taskId);
        calls["cancelTask"]++;
    }

    /// @notice A staker allocates the role's minimum (staking first if it must) and joins.
    function joinTask(uint256 actorSeed, uint256 taskSeed, bool asValidator) external onChainTime {
        if (tasks.length == 0) return;
        address who = _actor(actorSeed);
        uint256 taskId = _task(taskSeed);
        (ITaskEscrow.Role role,) = escrow.participantOf(taskId, who);
        if (role != ITaskEscrow.Role.None) return;
        uint256 allocation = MIN_STAKE;
        if (stakes.freeStakeOf(who) < allocation) {
            token.mint(who, allocation);
            ghost_minted += allocation;
            vm.startPrank(who);
            token.approve(address(stakes), allocation);
            stakes.stake(allocation);
            vm.stopPrank();
            ghost_staked += allocation;
        }
        vm.startPrank(who);
        if (stakes.allocationOf(who, taskId) < allocation) stakes.allocate(taskId, allocation);
        escrow.joinTask(taskId, asValidator ? ITaskEscrow.Role.Validator : ITaskEscrow.Role.Trainer);
        vm.stopPrank();
        calls["joinTask"]++;
    }

    // ------------------------------------------------------------------ a round

    function submitWork(uint256 actorSeed, uint256 taskSeed, uint256 units) external onChainTime {
        if (tasks.length == 0) return;
        address who = _actor(actorSeed);
        uint256 taskId = _task(taskSeed);
        ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
        if (block.timestamp < s.roundStart) vm.warp(s.roundStart);
        bytes32 tag = keccak256(abi.encode(taskId, s.round, who));
        vm.prank(who);
        escrow.submitWork(taskId, s.round, tag, CID, tag, CID, tag, tag, _bound(units, 1, type(uint32).max));
        calls["submitWork"]++;
    }

    /// @notice Draw the seed `late` blocks after the first block that may (re-arming it when over 256).
    function drawSeed(uint256 taskSeed, uint256 late) external onChainTime {
        if (tasks.length == 0) return;
        uint256 taskId = _task(taskSeed);
        ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
        if (s.seedBlock == 0 && block.timestamp < s.submitEnd) vm.warp(s.submitEnd);
        if (s.seedBlock != 0 && block.number <= s.seedBlock) {
            vm.roll(uint256(s.seedBlock) + 1 + (late % 4 == 0 ? _bound(late, 0, 300) : 0));
        }
        escrow.drawSeed(taskId);
        calls["drawSeed"]++;
    }

    /// @notice A validator commits a vector: most often all the same verdict, else one per submission.
    function commitVerdicts(uint256 actorSeed, uint256 taskSeed, uint256 verdictSeed) external onChainTime {
        if (tasks.length == 0) return;
        address who = _actor(actorSeed);
        uint256 taskId = _task(taskSeed);
        uint256 round = escrow.taskState(taskId).round;
        uint256 n = registry.ballotOf(taskId, round).submissions;
        uint256 verdicts;
        for (uint256 i = 0; i < n; ++i) {
            uint256 code = verdictSeed % 4 == 0 ? 1 + (verdictSeed >> (2 + 2 * i)) % 3 : 1 + (verdictSeed >> 2) % 3;
            verdicts |= code << (2 * i);
        }
        bytes32 key = keccak256(abi.encode(taskId, round, who));
        vm.prank(who);
        registry.commitVerdicts(taskId, round, keccak256(abi.encode(taskId, round, who, verdicts, _salt(key))));
        _committed[key] = verdicts;
        calls["commitVerdicts"]++;
    }

    function revealVerdicts(uint256 actorSeed, uint256 taskSeed) external onChainTime {
        if (tasks.length == 0) return;
        address who = _actor(actorSeed);
        uint256 taskId = _task(taskSeed);
        uint256 round = escrow.taskState(taskId).round;
        bytes32 key = keccak256(abi.encode(taskId, round, who));
        IAttestationRegistry.Ballot memory b = registry.ballotOf(taskId, round);
        if (b.commitEnd != 0 && block.timestamp < b.commitEnd) vm.warp(b.commitEnd);
        vm.prank(who);
        registry.revealVerdicts(taskId, round, _committed[key], _salt(key));
        calls["revealVerdicts"]++;
    }

    function commitModelVote(uint256 actorSeed, uint256 taskSeed, bool other) external onChainTime {
        if (tasks.length == 0) return;
        address who = _actor(actorSeed);
        uint256 taskId = _task(taskSeed);
        uint256 round = escrow.taskState(taskId).round;
        IAttestationRegistry.Phase phase = registry.phaseOf(taskId, round);
        if (phase == IAttestationRegistry.Phase.Reveal) vm.warp(registry.ballotOf(taskId, round).revealEnd);
        _commitVote(taskId, round, who, keccak256(abi.encode("model", taskId, round, other)));
        calls["commitModelVote"]++;
    }

    function voteModel(uint256 actorSeed, uint256 taskSeed) external onChainTime {
        if (tasks.length == 0) return;
        address who = _actor(actorSeed);
        uint256 taskId = _task(taskSeed);
        uint256 round = escrow.taskState(taskId).round;
        IAttestationRegistry.Ballot memory b = registry.ballotOf(taskId, round);
        if (registry.phaseOf(taskId, round) == IAttestationRegistry.Phase.VoteCommit) vm.warp(b.voteCommitEnd);
        _revealVote(taskId, round, who);
        calls["voteModel"]++;
    }

    function _commitVote(uint256 taskId, uint256 round, address who, bytes32 modelHash) internal {
        bytes32 key = keccak256(abi.encode("vote", taskId, round, who));
        vm.prank(who);
        registry.commitModelVote(
            taskId, round, keccak256(abi.encode(taskId, round, who, modelHash, keccak256(bytes(CID)), _salt(key)))
        );
        _voteCommitted[key] = modelHash;
    }

    function _revealVote(uint256 taskId, uint256 round, address who) internal {
        bytes32 key = keccak256(abi.encode("vote", taskId, round, who));
        vm.prank(who);
        registry.voteModel(taskId, round, _voteCommitted[key], CID, _salt(key));
    }

    /// @notice Finalise the current round, first moving the clock past whatever it waits for.
    function finalizeRound(uint256 taskSeed) external onChainTime {
        if (tasks.length == 0) return;
        uint256 taskId = _task(taskSeed);
        ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
        if (s.submissions == 0) {
            if (block.timestamp < s.submitEnd) vm.warp(s.submitEnd);
        } else {
            IAttestationRegistry.Ballot memory b = registry.ballotOf(taskId, s.round);
            if (b.commitEnd != 0 && block.timestamp < b.voteEnd) vm.warp(b.voteEnd);
        }
        _finalize(taskId);
    }

    function _finalize(uint256 taskId) internal creditsOf(taskId) {
        escrow.finalizeRound(taskId);
        calls["finalizeRound"]++;
    }

    /// @notice Move a task's current round on by 1 to 8 phases (`phases`), as its participants would: in
    /// the submit phase and in the commit, reveal and vote phases, each actor that may act does so (about
    /// three in four of them, by `choice`), or the clock moves to the phase's end when nobody is left;
    /// then the seed is armed and drawn, and the round finalised.
    function advance(uint256 taskSeed, uint256 choice, uint256 phases) external onChainTime {
        if (tasks.length == 0) return;
        uint256 taskId = _task(taskSeed);
        for (uint256 i = 0; i <= phases % 8; ++i) {
            if (!_advanceOnce(taskId, choice)) break;
        }
        calls["advance"]++;
    }

    /// @dev One phase of `advance`; false once the task has ended.
    function _advanceOnce(uint256 taskId, uint256 choice) internal returns (bool) {
        ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
        if (s.status != ITaskEscrow.TaskStatus.Active) return false;
        if (block.timestamp < s.roundStart) {
            vm.warp(s.roundStart);
        } else if (!s.seedDrawn && s.seedBlock == 0) {
            if (block.timestamp < s.submitEnd) {
                if (_everyone(taskId, s.round, choice, this.trySubmit) == 0) vm.warp(s.submitEnd);
            } else if (s.submissions == 0) {
                _finalize(taskId);
            } else {
                escrow.drawSeed(taskId);
            }
        } else if (!s.seedDrawn) {
            if (block.number <= s.seedBlock) vm.roll(uint256(s.seedBlock) + 1);
            escrow.drawSeed(taskId);
        } else {
            _advanceBallot(taskId, s.round, choice);
        }
        return true;
    }

    function _advanceBallot(uint256 taskId, uint256 round, uint256 choice) internal {
        IAttestationRegistry.Phase phase = registry.phaseOf(taskId, round);
        IAttestationRegistry.Ballot memory b = registry.ballotOf(taskId, round);
        if (phase == IAttestationRegistry.Phase.Commit) {
            if (_everyone(taskId, round, choice, this.tryCommit) == 0) vm.warp(b.commitEnd);
        } else if (phase == IAttestationRegistry.Phase.Reveal) {
            if (_everyone(taskId, round, choice, this.tryReveal) == 0) vm.warp(b.revealEnd);
        } else if (phase == IAttestationRegistry.Phase.VoteCommit) {
            if (_everyone(taskId, round, choice, this.tryCommitVote) == 0) vm.warp(b.voteCommitEnd);
        } else if (phase == IAttestationRegistry.Phase.VoteReveal) {
            if (_everyone(taskId, round, choice, this.tryRevealVote) == 0) vm.warp(b.voteEnd);
        } else {
            _finalize(taskId);
        }
    }

    /// @dev `act(task, round, actor, choice)` for the actors that `choice` picks; how many succeeded.
    function _everyone(
        uint256 taskId,
        uint256 round,
        uint256 choice,
        function(uint256, uint256, address, uint256) external returns (bool) act
    ) internal returns (uint256 done) {
        for (uint256 i = 0; i < actors.length; ++i) {
            if ((choice >> (2 * i)) & 3 == 0) continue;
            try act(taskId, round, actors[i], choice >> (12 + 8 * i)) returns (bool ok) {
                if (ok) done++;
            } catch {}
        }
    }

    /// @dev The steps of `advance`, external so that a revert is caught there (only this contract calls).
    function trySubmit(uint256 taskId, uint256 round, address who, uint256 choice) external returns (bool) {
        require(msg.sender == address(this), "internal");
        bytes32 tag = keccak256(abi.encode(taskId, round, who));
        vm.prank(who);
        escrow.submitWork(taskId, round, tag, CID, tag, CID, tag, tag, 1 + choice % 100_000);
        return true;
    }

    function tryCommit(uint256 taskId, uint256 round, address who, uint256 choice) external returns (bool) {
        require(msg.sender == address(this), "internal");
        uint256 n = registry.ballotOf(taskId, round).submissions;
        uint256 verdicts;
        for (uint256 i = 0; i < n; ++i) {
            // Most often everyone agrees (by task and round), else this validator's own verdicts.
            uint256 basis = choice % 4 == 0 ? choice >> (2 * i + 2) : uint256(keccak256(abi.encode(taskId, round, i)));
            verdicts |= (1 + basis % 3) << (2 * i);
        }
        bytes32 key = keccak256(abi.encode(taskId, round, who));
        vm.prank(who);
        registry.commitVerdicts(taskId, round, keccak256(abi.encode(taskId, round, who, verdicts, _salt(key))));
        _committed[key] = verdicts;
        return true;
    }

    function tryReveal(uint256 taskId, uint256 round, address who, uint256) external returns (bool) {
        require(msg.sender == address(this), "internal");
        bytes32 key = keccak256(abi.encode(taskId, round, who));
        vm.prank(who);
        registry.revealVerdicts(taskId, round, _committed[key], _salt(key));
        return true;
    }

    function tryCommitVote(uint256 taskId, uint256 round, address who, uint256 choice) external returns (bool) {
        require(msg.sender == address(this), "internal");
        _commitVote(taskId, round, who, keccak256(abi.encode("model", taskId, round, choice % 4 == 0)));
        return true;
    }

    function tryRevealVote(uint256 taskId, uint256 round, address who, uint256) external returns (bool) {
        require(msg.sender == address(this), "internal");
        _revealVote(taskId, round, who);
        return true;
    }

    // ------------------------------------------------------------------ settlement and claims

    /// @notice Settle a submission of a finalised round: an accepted one is credited exactly
    /// `rate * workUnits` to its trainer, a rejected or unavailable one slashed exactly `trainerSlashBps` of
    /// the allocation it has left, an undecided one neither.
    function settleSubmission(uint256 taskSeed, uint256 roundSeed, uint256 indexSeed) external onChainTime {
        if (tasks.length == 0) return;
        uint256 taskId = _task(taskSeed);
        uint256 finalized = escrow.taskState(taskId).round;
        if (finalized == 0) return;
        uint256 round = roundSeed % finalized;
        uint256 index = indexSeed % 4;
        (address trainer, uint256 workUnits,) = escrow.submissionOf(taskId, round, index);
        uint256 allocation = stakes.allocationOf(trainer, taskId);
        uint256 credit = distributor.creditOf(trainer);
        uint256 staked = stakes.totalStake();
        IAttestationRegistry.Verdict decision = registry.decisionOf(taskId, round, index);
        _settleSubmission(taskId, round, index);
        uint256 slashed = staked - stakes.totalStake();
        ghost_slashed += slashed;
        (uint256 rate,,) = escrow.roundResultOf(taskId, round);
        uint256 credited = distributor.creditOf(trainer) - credit;
        uint256 bps = escrow.taskConfig(taskId).trainerSlashBps;
        if (decision == IAttestationRegistry.Verdict.Accept) {
            if (credited != rate * workUnits || slashed != 0) ghost_creditViolations++;
        } else if (decision == IAttestationRegistry.Verdict.None) {
            if (credited != 0 || slashed != 0) ghost_creditViolations++;
        } else if (credited != 0 || slashed != allocation * bps / 10_000 || slashed > allocation) {
            ghost_slashViolations++;
        }
    }

    function _settleSubmission(uint256 taskId, uint256 round, uint256 index) internal creditsOf(taskId) {
        escrow.settleSubmission(taskId, round, index);
        calls["settleSubmission"]++;
    }

    /// @notice Settle a validator's round: rewarded with the round's share, forfeited, or slashed exactly
    /// `validatorSlashBps` of the allocation it has left.
    function settleValidator(uint256 taskSeed, uint256 roundSeed, uint256 actorSeed) external onChainTime {
        if (tasks.length == 0) return;
        uint256 taskId = _task(taskSeed);
        uint256 finalized = escrow.taskState(taskId).round;
        if (finalized == 0) return;
        uint256 round = roundSeed % finalized;
        address who = _actor(actorSeed);
        uint256 allocation = stakes.allocationOf(who, taskId);
        uint256 credit = distributor.creditOf(who);
        uint256 staked = stakes.totalStake();
        (, bool revealed, bool agreed,) = registry.validatorOutcome(taskId, round, who);
        _settleValidator(taskId, round, who);
        uint256 slashed = staked - stakes.totalStake();
        ghost_slashed += slashed;
        (, uint256 share,) = escrow.roundResultOf(taskId, round);
        uint256 credited = distributor.creditOf(who) - credit;
        uint256 bps = escrow.taskConfig(taskId).validatorSlashBps;
        if (!revealed) {
            if (credited != 0 || slashed != allocation * bps / 10_000 || slashed > allocation) {
                ghost_slashViolations++;
            }
        } else if (credited != (agreed ? share : 0) || slashed != 0) {
            ghost_creditViolations++;
        }
    }

    function _settleValidator(uint256 taskId, uint256 round, address who) internal creditsOf(taskId) {
        escrow.settleValidator(taskId, round, who);
        calls["settleValidator"]++;
    }

    /// @notice Settle a trainer's no-shows (and free its seat when due): slashed exactly
    /// `min(k * noShowSlashBps, 10000)` basis points of the allocation it has left for its k unsettled
    /// no-shows, credited nothing.
    function settleNoShows(uint256 taskSeed, uint256 actorSeed) external onChainTime {
        if (tasks.length == 0) return;
        uint256 taskId = _task(taskSeed);
        address who = _actor(actorSeed);
        (uint256 missed,,) = escrow.noShowsOf(taskId, who);
        uint256 allocation = stakes.allocationOf(who, taskId);
        uint256 credit = distributor.creditOf(who);
        uint256 staked = stakes.totalStake();
        escrow.settleNoShows(taskId, who);
        calls["settleNoShows"]++;
        uint256 slashed = staked - stakes.totalStake();
        ghost_slashed += slashed;
        uint256 bps = missed * escrow.taskConfig(taskId).noShowSlashBps;
        if (bps > 10_000) bps = 10_000;
        if (slashed != allocation * bps / 10_000 || slashed > allocation) ghost_slashViolations++;
        if (distributor.creditOf(who) != credit) ghost_creditViolations++;
        (uint256 left,,) = escrow.noShowsOf(taskId, who);
        if (left != 0) ghost_slashViolations++;
    }

    function claim(uint256 actorSeed, bool initiator) external onChainTime {
        address who = initiator ? address(this) : _actor(actorSeed);
        uint256 owed = distributor.creditOf(who);
        vm.prank(who);
        uint256 paid = distributor.claim();
        if (paid != owed) ghost_creditViolations++;
        ghost_claimed += paid;
        calls["claim"]++;
    }

    /// @dev A keeper's batch: two actors (possibly the same one, listed twice) and perhaps the initiator,
    /// sent by a third actor; every account is paid exactly its credit, once, and the caller nothing more.
    function claimFor(uint256 seedA, uint256 seedB, uint256 callerSeed, bool withInitiator) external onChainTime {
        address[] memory accounts = new address[](withInitiator ? 3 : 2);
        (accounts[0], accounts[1]) = (_actor(seedA), _actor(seedB));
        if (withInitiator) accounts[2] = address(this);
        uint256[] memory owed = new uint256[](accounts.length);
        uint256[] memory before = new uint256[](accounts.length);
        uint256 total;
        for (uint256 i = 0; i < accounts.length; ++i) {
            before[i] = token.balanceOf(accounts[i]);
            bool seen = false;
            for (uint256 j = 0; j < i; ++j) {
                if (accounts[j] == accounts[i]) seen = true;
            }
            if (!seen) owed[i] = distributor.creditOf(accounts[i]);
            total += owed[i];
        }
        address caller = _actor(callerSeed);
        uint256 callerBefore = token.balanceOf(caller);
        vm.prank(caller);
        uint256 paid = distributor.claimFor(accounts);
        if (paid != total) ghost_creditViolations++;
        for (uint256 i = 0; i < accounts.length; ++i) {
            if (owed[i] != 0 && token.balanceOf(accounts[i]) != before[i] + owed[i]) ghost_creditViolations++;
            if (distributor.creditOf(accounts[i]) != 0) ghost_creditViolations++;
        }
        bool callerListed = caller == accounts[0] || caller == accounts[1];
        if (!callerListed && token.balanceOf(caller) != callerBefore) ghost_creditViolations++;
        ghost_claimed += paid;
        calls["claimFor"]++;
    }

    // ------------------------------------------------------------------ the world

    function warp(uint256 seconds_) external onChainTime {
        vm.warp(block.timestamp + _bound(seconds_, 1, 4_000));
        vm.roll(block.number + 1);
        calls["warp"]++;
    }

    function toggleBurn() external onChainTime {
        token.setBlockBurn(!token.blockBurn());
        calls["toggleBurn"]++;
    }

    function flushBurn() external onChainTime {
        stakes.flushBurn();
        calls["flushBurn"]++;
    }

    // ------------------------------------------------------------------ helpers

    /// @dev Whether `who`'s allocation to `taskId` must be locked now, from the rules alone: a participant
    /// of an active task, or one that owes a settlement of a finalised round, or before the task's end plus
    /// the settlement grace (none when it was cancelled before its start).
    function _lockedNow(uint256 taskId, address who, ITaskEscrow.TaskState memory s) internal view returns (bool) {
        (ITaskEscrow.Role role,) = escrow.participantOf(taskId, who);
        if (role == ITaskEscrow.Role.None) return false;
        if (s.status == ITaskEscrow.TaskStatus.Active) return true;
        if (escrow.unsettledOf(taskId, who) + escrow.validatorUnsettledOf(taskId, who) != 0) return true;
        (uint256 noShows,,) = escrow.noShowsOf(taskId, who);
        if (noShows != 0 && escrow.taskConfig(taskId).noShowSlashBps != 0) return true;
        uint256 end = s.endedAt < escrow.taskConfig(taskId).startTime ? s.endedAt : uint256(s.endedAt) + grace;
        return block.timestamp < end;
    }

    /// @notice Whether the rules say `who`'s allocation to `taskId` is locked now (for the invariants).
    function lockedNow(uint256 taskId, address who) external view returns (bool) {
        return _lockedNow(taskId, who, escrow.taskState(taskId));
    }

    function _salt(bytes32 key) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", key));
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    function _task(uint256 seed) internal view returns (uint256) {
        return tasks[seed % tasks.length];
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (x >= min && x <= max) return x;
        return min + x % (max - min + 1);
    }
}
