// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ITaskEscrow} from "../../contracts/interfaces/ITaskEscrow.sol";
import {TestToken} from "../../contracts/test/TestToken.sol";
import {ProtocolFixture} from "./utils/ProtocolFixture.sol";

/// @notice The gas of every operation in scripts/bench_gas.py's scenario (4 trainers, 3 validators, two
/// full rounds, then settlements (round 0 item by item and its credits paid in one claimFor, round 1 in one settleRound), claims and unbonding, a squatter's seat freed in a second task, and a
/// honeypot committed, revealed and a lazy validator slashed in a third), as
/// forge measures it with `--isolate` (each call its own transaction: the same gasUsed as a receipt).
/// Asserts the targets of contracts/gas-targets.json and records the largest gas per operation in
/// tests/forge/snapshots/GasSnapshotTest.json, which CI compares with the committed one
/// (FORGE_SNAPSHOT_CHECK; after a deliberate change: `make gas-snapshot`).
///
///   bin/forge test --isolate --match-contract GasSnapshotTest
contract GasSnapshotTest is ProtocolFixture {
    uint256 internal constant TRAINERS = 4;
    uint256 internal constant VALIDATORS = 3;
    uint256 internal constant ROUNDS = 2;
    uint256 internal constant STAKE = 1e21;

    TestToken internal testToken;
    address[] internal people;
    string[] internal operations;
    mapping(string operation => uint256 gas) internal largest;

    function setUp() public {
        testToken = new TestToken();
        deployProtocol(testToken);
        for (uint256 i = 0; i < TRAINERS + VALIDATORS; ++i) {
            people.push(address(uint160(0x8000 + i)));
        }
    }

    /// @dev Keep the gas of the call just made under `operation` if it is the largest so far.
    function _record(string memory operation) internal {
        uint256 used = vm.lastCallGas().gasTotalUsed;
        if (largest[operation] == 0) operations.push(operation);
        if (used > largest[operation]) largest[operation] = used;
    }

    function _params() internal view returns (ITaskEscrow.TaskParams memory p) {
        p = defaultParams();
        p.numRounds = uint32(ROUNDS);
        p.rewardPerRound = 1e20;
        p.minTrainerStake = uint128(STAKE / 2);
        p.minValidatorStake = uint128(STAKE / 2);
        p.maxTrainers = uint8(TRAINERS);
        p.maxValidators = uint8(VALIDATORS);
        p.maxEmptyRounds = 3;
        p.startTime = uint64(block.timestamp + 120);
    }

    function test_operations_meetTheTargets() public {
        for (uint256 i = 0; i < people.length; ++i) {
            testToken.mint(people[i], 1e24);
            vm.prank(people[i]);
            testToken.approve(address(stakes), STAKE);
            vm.prank(people[i]);
            stakes.stake(STAKE);
            _record("stake");
        }
        ITaskEscrow.TaskParams memory p = _params();
        testToken.mint(address(this), 1e24);
        testToken.approve(address(escrow), uint256(p.rewardPerRound) * p.numRounds);
        uint256 taskId = escrow.createTask(p);
        _record("createTask");
        for (uint256 i = 0; i < people.length; ++i) {
            vm.prank(people[i]);
            stakes.allocate(taskId, STAKE);
            _record("allocate");
            vm.prank(people[i]);
            escrow.joinTask(taskId, i < TRAINERS ? ITaskEscrow.Role.Trainer : ITaskEscrow.Role.Validator);
            _record("joinTask");
        }
        vm.warp(p.startTime);
        for (uint256 round = 0; round < ROUNDS; ++round) {
            _round(taskId, round);
        }
        _settleAndLeave(taskId);
        _squatter();
        _honeypot();
        _check();
    }

    /// @dev A second task without validators (its ballots close at once) where a squatter holds a seat and
    /// never submits: after one missed round (maxNoShows 1) settleNoShows slashes it and frees its seat
    /// once the other trainer submitted, which also closes the submit phase (the costliest case).
    function _squatter() internal {
        address worker = people[0];
        address squatter = people[1];
        ITaskEscrow.TaskParams memory p = _params();
        p.numRounds = 3;
        p.maxTrainers = 2;
        p.maxEmptyRounds = 0;
        p.noShowSlashBps = 500;
        p.maxNoShows = 1;
        p.startTime = uint64(block.timestamp + 60);
        testToken.approve(address(escrow), uint256(p.rewardPerRound) * p.numRounds);
        uint256 taskId = escrow.createTask(p);
        for (uint256 i = 0; i < 2; ++i) {
            address who = people[i];
            vm.startPrank(who);
            testToken.approve(address(stakes), STAKE);
            stakes.stake(STAKE);
            stakes.allocate(taskId, STAKE);
            escrow.joinTask(taskId, ITaskEscrow.Role.Trainer);
            vm.stopPrank();
        }
        vm.warp(p.startTime);
        for (uint256 round = 0; round < 2; ++round) {
            bytes32 tag = keccak256(abi.encode("squat", round));
            vm.prank(worker);
            escrow.submitWork(taskId, round, tag, CID, tag, CID, tag, tag, 1_000);
            if (round == 1) {
                escrow.settleNoShows(taskId, squatter);
                _record("settleNoShows");
            } else {
                vm.warp(block.timestamp + p.submitDuration);
                escrow.drawSeed(taskId);
            }
            vm.roll(block.number + 3);
            escrow.drawSeed(taskId);
            escrow.finalizeRound(taskId);
        }
    }

    /// @dev A one-round task whose initiator (this contract) commits a honeypot its bait (the second trainer)
    /// submits; two validators reject it, the third accepts everything and is slashed after the reveal.
    function _honeypot() internal {
        ITaskEscrow.TaskParams memory p = _params();
        p.numRounds = 1;
        p.maxTrainers = 2;
        p.startTime = uint64(block.timestamp + 60);
        testToken.approve(address(escrow), uint256(p.rewardPerRound) * p.numRounds);
        uint256 taskId = escrow.createTask(p);
        for (uint256 i = 0; i < TRAINERS + VALIDATORS; ++i) {
            if (i >= 2 && i < TRAINERS) continue;
            address who = people[i];
            vm.startPrank(who);
            testToken.approve(address(stakes), STAKE);
            stakes.stake(STAKE);
            stakes.allocate(taskId, STAKE);
            escrow.joinTask(taskId, i < TRAINERS ? ITaskEscrow.Role.Trainer : ITaskEscrow.Role.Validator);
            vm.stopPrank();
        }
        address bait = people[1];
        bytes32 secret = keccak256("honeypot salt");
        honeypots.commitHoneypot(taskId, 0, keccak256(abi.encode(taskId, uint256(0), bait, secret)));
        _record("commitHoneypot");
        vm.warp(p.startTime);
        submit(people[0], taskId, 0, 1_000);
        submit(bait, taskId, 0, 1_000);
        vm.roll(block.number + 3);
        escrow.drawSeed(taskId);
        uint256 rejecting = uint256(ACCEPT) | uint256(REJECT) << 2;
        uint256 lazy = uniform(ACCEPT, 2);
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            commit(people[TRAINERS + v], taskId, 0, v + 1 < VALIDATORS ? rejecting : lazy);
        }
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            reveal(people[TRAINERS + v], taskId, 0, v + 1 < VALIDATORS ? rejecting : lazy);
        }
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            commitVote(people[TRAINERS + v], taskId, 0, keccak256("honeypot model"));
        }
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            revealVote(people[TRAINERS + v], taskId, 0, keccak256("honeypot model"));
        }
        vm.prank(bait); // the bait consents by sending its own reveal
        honeypots.revealHoneypot(taskId, 0, 1, bait, secret);
        _record("revealHoneypot");
        honeypots.slashLazy(taskId, 0, people[TRAINERS + VALIDATORS - 1]);
        _record("slashLazy");
    }

    /// @dev Every trainer submits, the seed is drawn, every validator commits, reveals and votes (all
    /// reject the last trainer; the first validator also rejects the first, and so disagrees).
    function _round(uint256 taskId, uint256 round) internal {
        for (uint256 i = 0; i < TRAINERS; ++i) {
            bytes32 tag = keccak256(abi.encode(round, i));
            vm.prank(people[i]);
            escrow.submitWork(taskId, round, tag, CID, tag, CID, tag, tag, 40_000 + 1_000 * i);
            _record("submitWork");
        }
        vm.roll(block.number + 3);
        escrow.drawSeed(taskId);
        _record("drawSeed");
        uint256[VALIDATORS] memory words;
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            words[v] = uniform(ACCEPT, TRAINERS - 1) | uint256(REJECT) << (2 * (TRAINERS - 1));
            if (v == 0) words[v] = (words[v] & ~uint256(3)) | REJECT;
            address validator = people[TRAINERS + v];
            bytes32 commitment = keccak256(abi.encode(taskId, round, validator, words[v], salt(taskId, round, validator)));
            vm.prank(validator);
            registry.commitVerdicts(taskId, round, commitment);
            _record("commitVerdicts");
        }
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            reveal(people[TRAINERS + v], taskId, round, words[v]);
            _record("revealVerdicts");
        }
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            commitVote(people[TRAINERS + v], taskId, round, keccak256(abi.encode("model", round + 1)));
            _record("commitModelVote");
        }
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            revealVote(people[TRAINERS + v], taskId, round, keccak256(abi.encode("model", round + 1)));
            _record("voteModel");
        }
        escrow.finalizeRound(taskId);
        _record("finalizeRound");
    }

    /// @dev Round 0 settled item by item, the last round in one settleRound (every item of it).
    function _settleAndLeave(uint256 taskId) internal {
        for (uint256 i = 0; i < TRAINERS; ++i) {
            escrow.settleSubmission(taskId, 0, i);
            _record("settleSubmission");
        }
        address[] memory validators = new address[](VALIDATORS);
        for (uint256 v = 0; v < VALIDATORS; ++v) {
            validators[v] = people[TRAINERS + v];
            escrow.settleValidator(taskId, 0, validators[v]);
            _record("settleValidator");
        }
        // Round 0's credits paid in one batch to every participant, as a keeper does (the accounts stay
        // open: the settlement and the claims below cost what they would without it).
        distributor.claimFor(people);
        _record("claimFor");
        uint256[] memory indices = new uint256[](TRAINERS);
        for (uint256 i = 0; i < TRAINERS; ++i) {
            indices[i] = i;
        }
        escrow.settleRound(taskId, ROUNDS - 1, indices, validators);
        _record("settleRound");
        for (uint256 i = 0; i < people.length; ++i) {
            if (distributor.creditOf(people[i]) == 0) continue;
            vm.prank(people[i]);
            distributor.claim();
            _record("claim");
        }
        vm.warp(block.timestamp + UNBONDING);
        for (uint256 i = 0; i < people.length; ++i) {
            uint256 allocation = stakes.allocationOf(people[i], taskId);
            vm.prank(people[i]);
            stakes.deallocate(taskId, allocation);
            _record("deallocate");
            (uint256 bonded,,,) = stakes.stakeOf(people[i]);
            vm.prank(people[i]);
            stakes.requestUnstake(bonded);
            _record("requestUnstake");
        }
        vm.warp(block.timestamp + UNBONDING);
        for (uint256 i = 0; i < people.length; ++i) {
            vm.prank(people[i]);
            stakes.withdraw();
            _record("withdraw");
        }
    }

    /// @dev Every target of contracts/gas-targets.json met; every operation's largest gas snapshotted.
    function _check() internal {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/contracts/gas-targets.json"));
        string[] memory names = vm.parseJsonKeys(json, ".targets");
        for (uint256 i = 0; i < names.length; ++i) {
            uint256 target = vm.parseJsonUint(json, string.concat(".targets.", names[i]));
            vm.assertGe(largest[names[i]], 1, string.concat(names[i], " was not measured"));
            vm.assertLe(largest[names[i]], target, string.concat(names[i], " is over its target"));
        }
        uint256 claimForTarget = vm.parseJsonUint(json, ".per_account_targets.claimFor.base")
            + people.length * vm.parseJsonUint(json, ".per_account_targets.claimFor.per_account");
        vm.assertGe(largest["claimFor"], 1, "claimFor was not measured");
        vm.assertLe(largest["claimFor"], claimForTarget, "claimFor is over its target");
        for (uint256 i = 0; i < operations.length; ++i) {
            vm.snapshotValue(operations[i], largest[operations[i]]);
        }
    }
}
