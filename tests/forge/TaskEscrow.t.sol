// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAttestationRegistry} from "../../contracts/interfaces/IAttestationRegistry.sol";
import {ITaskEscrow} from "../../contracts/interfaces/ITaskEscrow.sol";
import {IStakeManager} from "../../contracts/interfaces/IStakeManager.sol";
import {BurnBlockToken} from "../../contracts/test/BurnBlockToken.sol";
import {TestToken} from "../../contracts/test/TestToken.sol";
import {ProtocolHandler} from "./handlers/ProtocolHandler.sol";
import {ProtocolFixture} from "./utils/ProtocolFixture.sol";

/// @notice Whole rounds through the four contracts: what a settlement credits and slashes, that it
/// happens once, and that an allocation stays locked until its owner's part is settled.
contract TaskEscrowTest is ProtocolFixture {
    uint256 internal constant STAKE = 1e21;
    address[3] internal trainers = [address(0x7001), address(0x7002), address(0x7003)];
    address[3] internal validators = [address(0x7101), address(0x7102), address(0x7103)];
    TestToken internal testToken;

    function setUp() public {
        testToken = new TestToken();
        deployProtocol(testToken);
        testToken.approve(address(escrow), type(uint256).max);
    }

    /// @dev A task with the given parameters, joined by every trainer and validator, started.
    function _task(ITaskEscrow.TaskParams memory p) internal returns (uint256 taskId) {
        testToken.mint(address(this), uint256(p.rewardPerRound) * p.numRounds);
        taskId = escrow.createTask(p);
        for (uint256 i = 0; i < 3; ++i) {
            testToken.mint(trainers[i], STAKE);
            stakeAndAllocate(trainers[i], STAKE, taskId, STAKE / 2);
            join(trainers[i], taskId, ITaskEscrow.Role.Trainer);
            testToken.mint(validators[i], STAKE);
            stakeAndAllocate(validators[i], STAKE, taskId, STAKE / 2);
            join(validators[i], taskId, ITaskEscrow.Role.Validator);
        }
        vm.warp(p.startTime);
    }

    /// @dev Round `round` with every trainer submitting `units[i]`, validator i (of those `reveals` picks)
    /// committing and revealing `verdicts[i]` and voting; the round is then finalised.
    function _round(uint256 taskId, uint256 round, uint256[3] memory units, uint256[3] memory verdicts, uint256 reveals)
        internal
    {
        for (uint256 i = 0; i < 3; ++i) {
            submit(trainers[i], taskId, round, units[i]);
        }
        drawSeed(taskId);
        for (uint256 i = 0; i < 3; ++i) {
            commit(validators[i], taskId, round, verdicts[i]);
        }
        for (uint256 i = 0; i < 3; ++i) {
            if ((reveals >> i) & 1 == 1) reveal(validators[i], taskId, round, verdicts[i]);
        }
        IAttestationRegistry.Ballot memory b = registry.ballotOf(taskId, round);
        if (block.timestamp < b.revealEnd && b.revealed != b.committed) vm.warp(b.revealEnd);
        for (uint256 i = 0; i < 3; ++i) {
            if ((reveals >> i) & 1 == 1) commitVote(validators[i], taskId, round, keccak256("model 1"));
        }
        closeVoteCommit(taskId, round);
        for (uint256 i = 0; i < 3; ++i) {
            if ((reveals >> i) & 1 == 1) revealVote(validators[i], taskId, round, keccak256("model 1"));
        }
        closeBallot(taskId, round);
        escrow.finalizeRound(taskId);
    }

    function _allCredits() internal view returns (uint256 total) {
        total = distributor.creditOf(address(this));
        for (uint256 i = 0; i < 3; ++i) {
            total += distributor.creditOf(trainers[i]) + distributor.creditOf(validators[i]);
        }
    }

    function test_settleSubmission_creditsOnceThenReverts() public {
        ITaskEscrow.TaskParams memory p = defaultParams();
        p.numRounds = 1;
        uint256 taskId = _task(p);
        _round(taskId, 0, [uint256(1_000), 2_000, 3_000], [uniform(ACCEPT, 3), uniform(ACCEPT, 3), uniform(ACCEPT, 3)], 7);
        (uint256 rate,,) = escrow.roundResultOf(taskId, 0);

        escrow.settleSubmission(taskId, 0, 1);
        vm.assertEq(distributor.creditOf(trainers[1]), rate * 2_000, "rate * workUnits");
        vm.expectRevert(abi.encodeWithSelector(ITaskEscrow.SubmissionAlreadySettled.selector, taskId, 0, 1));
        escrow.settleSubmission(taskId, 0, 1);
        escrow.settleValidator(taskId, 0, validators[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskEscrow.ValidatorAlreadySettled.selector, taskId, 0, validators[0])
        );
        escrow.settleValidator(taskId, 0, validators[0]);
    }

    function test_deallocate_lockedUntilTheOwnPartIsSettled() public {
        ITaskEscrow.TaskParams memory p = defaultParams();
        p.numRounds = 1;
        uint256 taskId = _task(p);
        // Validator 2 never reveals: it owes its own slash.
        _round(taskId, 0, [uint256(1_000), 2_000, 3_000], [uniform(ACCEPT, 3), uniform(ACCEPT, 3), uniform(ACCEPT, 3)], 3);
        vm.warp(block.timestamp + UNBONDING);

        vm.prank(trainers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.AllocationLocked.selector, trainers[0], taskId, type(uint256).max)
        );
        stakes.deallocate(taskId, STAKE / 2);
        vm.prank(validators[2]);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.AllocationLocked.selector, validators[2], taskId, type(uint256).max)
        );
        stakes.deallocate(taskId, 1);

        escrow.settleSubmission(taskId, 0, 0);
        vm.prank(trainers[0]);
        stakes.deallocate(taskId, STAKE / 2);
        escrow.settleValidator(taskId, 0, validators[2]);
        uint256 left = stakes.allocationOf(validators[2], taskId);
        vm.assertEq(left, STAKE / 2 - STAKE / 2 * p.validatorSlashBps / 10_000, "slashed its fraction once");
        vm.prank(validators[2]);
        stakes.deallocate(taskId, left);
    }

    /// @notice One round of any outcome, everything settled: the task credits exactly its deposit
    /// (rewards, forfeits and the refund), slashes take exactly their fraction, nothing is left reserved.
    function testFuzz_round_creditsExactlyTheDeposit(
        uint256[3] memory units,
        uint256[3] memory verdicts,
        uint256 reveals,
        uint16 shareBps,
        uint128 reward
    ) public {
        ITaskEscrow.TaskParams memory p = defaultParams();
        p.numRounds = 1;
        p.validatorShareBps = uint16(bound(shareBps, 0, 10_000));
        p.rewardPerRound = uint128(bound(reward, 1, 1e24));
        uint256 taskId = _task(p);
        for (uint256 i = 0; i < 3; ++i) {
            units[i] = bound(units[i], 1, type(uint32).max);
            uint256 word;
            for (uint256 j = 0; j < 3; ++j) {
                word |= (1 + (verdicts[i] >> (8 * j)) % 3) << (2 * j);
            }
            verdicts[i] = word;
        }
        _round(taskId, 0, units, verdicts, bound(reveals, 0, 7));

        uint256 staked = stakes.totalStake();
        for (uint256 i = 0; i < 3; ++i) {
            uint256 allocation = stakes.allocationOf(trainers[i], taskId);
            IAttestationRegistry.Verdict decision = registry.decisionOf(taskId, 0, i);
            escrow.settleSubmission(taskId, 0, i);
            uint256 taken = allocation - stakes.allocationOf(trainers[i], taskId);
            bool slashable = decision == IAttestationRegistry.Verdict.Reject
                || decision == IAttestationRegistry.Verdict.Unavailable;
            vm.assertEq(taken, slashable ? allocation * p.trainerSlashBps / 10_000 : 0, "trainer slash");
            escrow.settleValidator(taskId, 0, validators[i]);
        }
        (uint256 remaining, uint256 reserved) = escrow.fundsOf(taskId);
        vm.assertEq(remaining + reserved, 0, "nothing left in the task");
        vm.assertEq(_allCredits(), uint256(p.rewardPerRound), "credited == deposit");
        vm.assertEq(distributor.totalEscrowed(), 0, "escrow empty");
        vm.assertLe(stakes.totalStake(), staked, "slashes only take");
    }

    /// @notice A trainer that holds a seat and misses rounds owes `noShowSlashBps` of its allocation per
    /// round, at most all of it, settled once by anyone; its allocation stays locked until then.
    function testFuzz_settleNoShows_slashesEachMissedRoundOnce(uint16 bps, uint8 missed) public {
        bps = uint16(bound(bps, 1, 10_000));
        missed = uint8(bound(missed, 1, 3));
        ITaskEscrow.TaskParams memory p = defaultParams();
        p.numRounds = 3;
        p.noShowSlashBps = bps;
        p.maxEmptyRounds = 0;
        uint256 taskId = _task(p);
        // Trainer 2 misses the last `missed` rounds; trainers 0 and 1 submit every round.
        for (uint256 round = 0; round < 3; ++round) {
            submit(trainers[0], taskId, round, 1_000);
            submit(trainers[1], taskId, round, 1_000);
            if (round + missed < 3) submit(trainers[2], taskId, round, 1_000);
            ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
            if (s.seedBlock == 0) vm.warp(s.submitEnd);
            drawSeed(taskId);
            closeBallot(taskId, round);
            escrow.finalizeRound(taskId);
        }
        (uint256 owed,,) = escrow.noShowsOf(taskId, trainers[2]);
        vm.assertEq(owed, missed, "one no-show per missed round");
        for (uint256 round = 0; round < 3; ++round) {
            for (uint256 i = 0; i < escrow.taskState(taskId).submissions + 3; ++i) {
                (address trainer,,) = escrow.submissionOf(taskId, round, i);
                if (trainer == address(0)) break;
                escrow.settleSubmission(taskId, round, i);
            }
            for (uint256 v = 0; v < 3; ++v) {
                escrow.settleValidator(taskId, round, validators[v]);
            }
        }
        vm.warp(block.timestamp + UNBONDING + 1);
        vm.assertEq(escrow.lockedUntil(taskId, trainers[2]), type(uint256).max, "locked while it owes");
        uint256 allocation = stakes.allocationOf(trainers[2], taskId);
        escrow.settleNoShows(taskId, trainers[2]);
        uint256 fraction = uint256(missed) * bps > 10_000 ? 10_000 : uint256(missed) * bps;
        vm.assertEq(stakes.allocationOf(trainers[2], taskId), allocation - allocation * fraction / 10_000, "slash");
        vm.expectRevert(
            abi.encodeWithSelector(ITaskEscrow.NothingToSettle.selector, taskId, trainers[2], missed, 0)
        );
        escrow.settleNoShows(taskId, trainers[2]);
        uint256 left = stakes.allocationOf(trainers[2], taskId);
        if (left == 0) return; // all of it was slashed
        vm.prank(trainers[2]);
        stakes.deallocate(taskId, left);
    }

    /// @notice A squatter (a trainer that holds a seat and never submits) loses its seat after `maxNoShows`
    /// rounds missed in a row: anyone's `settleNoShows` slashes the missed rounds, frees the seat and, the
    /// others having submitted, closes the submit phase at once; the squatter can neither rejoin nor submit
    /// again, owes nothing for the rounds after its seat was freed, and no longer holds later phases open.
    function test_settleNoShows_freesASquattersSeatAndClosesTheSubmitPhase() public {
        ITaskEscrow.TaskParams memory p = defaultParams();
        p.numRounds = 4;
        p.noShowSlashBps = 500;
        p.maxNoShows = 2;
        p.maxEmptyRounds = 0;
        uint256 taskId = _task(p);
        address squatter = trainers[2];
        for (uint256 round = 0; round < 2; ++round) {
            submit(trainers[0], taskId, round, 1_000);
            submit(trainers[1], taskId, round, 1_000);
            vm.warp(escrow.taskState(taskId).submitEnd); // the squatter keeps the phase open to its deadline
            drawSeed(taskId);
            closeBallot(taskId, round);
            escrow.finalizeRound(taskId);
        }
        (uint256 owed, uint256 inARow, bool seated) = escrow.noShowsOf(taskId, squatter);
        vm.assertEq(owed, 2, "two no-shows");
        vm.assertEq(inARow, 2, "two in a row");
        vm.assertTrue(seated, "still seated");

        submit(trainers[0], taskId, 2, 1_000);
        submit(trainers[1], taskId, 2, 1_000);
        ITaskEscrow.TaskState memory before = escrow.taskState(taskId);
        vm.assertEq(before.seedBlock, 0, "the phase waits for the squatter");
        vm.assertLt(block.timestamp, before.submitEnd, "before the deadline");
        uint256 allocation = stakes.allocationOf(squatter, taskId);
        uint256 slash = allocation * 1_000 / 10_000;
        vm.expectEmit(address(escrow));
        emit ITaskEscrow.NoShowsSettled(taskId, squatter, 2, slash);
        vm.expectEmit(address(escrow));
        emit ITaskEscrow.SeatFreed(taskId, squatter, 2, 2);
        vm.prank(validators[0]);
        escrow.settleNoShows(taskId, squatter);

        vm.assertEq(stakes.allocationOf(squatter, taskId), allocation - slash, "10% for two rounds");
        ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
        vm.assertEq(s.submitEnd, block.timestamp, "the submit phase closed");
        vm.assertEq(s.seedBlock, block.number + p.seedDelay, "the seed armed");
        (owed,, seated) = escrow.noShowsOf(taskId, squatter);
        vm.assertEq(owed, 0, "settled");
        vm.assertFalse(seated, "seat freed");
        vm.expectRevert(
            abi.encodeWithSelector(ITaskEscrow.AlreadyJoined.selector, taskId, squatter, ITaskEscrow.Role.Trainer)
        );
        join(squatter, taskId, ITaskEscrow.Role.Trainer);
        drawSeed(taskId);
        closeBallot(taskId, 2);
        escrow.finalizeRound(taskId);

        // The last round: the squatter cannot submit, and the other two close the phase on their own.
        vm.expectRevert(abi.encodeWithSelector(ITaskEscrow.NotTrainer.selector, taskId, 3, squatter));
        submit(squatter, taskId, 3, 1_000);
        submit(trainers[0], taskId, 3, 1_000);
        submit(trainers[1], taskId, 3, 1_000);
        vm.assertEq(escrow.taskState(taskId).submitEnd, block.timestamp, "closed by the two");
        drawSeed(taskId);
        closeBallot(taskId, 3);
        escrow.finalizeRound(taskId);
        vm.assertEq(uint256(escrow.taskState(taskId).status), uint256(ITaskEscrow.TaskStatus.Completed), "done");
        (owed,,) = escrow.noShowsOf(taskId, squatter);
        vm.assertEq(owed, 0, "nothing owed for the rounds after its seat was freed");
        vm.assertLt(escrow.lockedUntil(taskId, squatter), type(uint256).max, "released after the grace");
    }

    /// @notice The invariant handler, driven by a fixed sequence, reaches every money path the
    /// invariants are about (so a campaign that never settles or slashes cannot pass unnoticed).
    function test_handler_reachesSettlementsSlashesClaimsAndReleases() public {
        BurnBlockToken burnToken = new BurnBlockToken();
        burnToken.setBlockBurn(false);
        deployProtocol(burnToken);
        ProtocolHandler h = new ProtocolHandler(burnToken, stakes, distributor, registry, escrow);
        // One round (seed % 3 == 0), up to four trainers and four validators, slashes of a half.
        uint256 seed = (3 << 90) | (3 << 94) | (5_000 << 104) | (5_000 << 120) | (1e18 << 8);
        h.createTask(seed - seed % 3);
        for (uint256 i = 0; i < 6; ++i) {
            h.joinTask(i, 0, i % 2 == 1);
        }
        // Actors 0..4 act whenever they may (the trainers 0, 2, 4 and validators 1, 3); validator 5 never
        // commits, so it is slashed when settled.
        uint256 allButTheLast = type(uint256).max & ~uint256(3 << 10);
        for (uint256 step = 0; step < 12; ++step) {
            h.advance(0, allButTheLast, 0);
        }
        for (uint256 i = 0; i < 3; ++i) {
            h.settleSubmission(0, 0, i);
            h.settleValidator(0, 0, 2 * i + 1);
        }
        // Actors 0-2 claim their own; a keeper (actor 0) pays actors 3 and 4 and the initiator in one batch.
        for (uint256 i = 0; i < 3; ++i) {
            if (distributor.creditOf(h.actors(i)) != 0) h.claim(i, false);
        }
        uint256 batch = distributor.creditOf(h.actors(3)) + distributor.creditOf(h.actors(4))
            + distributor.creditOf(address(h));
        if (batch != 0) h.claimFor(3, 4, 0, true);
        if (distributor.creditOf(h.actors(5)) != 0) h.claim(5, false);
        for (uint256 i = 0; i < 6; ++i) {
            h.deallocate(i, 0, true);
        }
        vm.assertGe(h.calls("finalizeRound"), 1, "finalised");
        vm.assertGe(h.calls("settleSubmission"), 1, "settled a submission");
        vm.assertGe(h.calls("settleValidator"), 1, "settled a validator");
        vm.assertGe(h.calls("claim"), 1, "claimed");
        vm.assertEq(h.calls("claimFor"), 1, "paid a batch");
        vm.assertGe(h.calls("deallocate"), 1, "released an allocation");
        vm.assertGe(h.ghost_slashed(), 1, "slashed");
        vm.assertEq(h.ghost_lockViolations() + h.ghost_slashViolations() + h.ghost_creditViolations(), 0, "rules");
    }
}
