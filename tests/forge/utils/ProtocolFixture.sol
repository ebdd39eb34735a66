// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IAppealCourt} from "../../../contracts/interfaces/IAppealCourt.sol";
import {AttestationRegistry} from "../../../contracts/AttestationRegistry.sol";
import {HoneypotRegistry} from "../../../contracts/HoneypotRegistry.sol";
import {RewardDistributor} from "../../../contracts/RewardDistributor.sol";
import {StakeManager} from "../../../contracts/StakeManager.sol";
import {TaskEscrow} from "../../../contracts/TaskEscrow.sol";
import {IAttestationRegistry} from "../../../contracts/interfaces/IAttestationRegistry.sol";
import {ITaskEscrow} from "../../../contracts/interfaces/ITaskEscrow.sol";
import {TestBase} from "./TestBase.sol";

/// @title ProtocolFixture
/// @notice The five contracts wired as `protocol.contracts.deploy_protocol` wires them (immutables, the
/// escrow's address computed from the deployer's nonce), task parameters, and round helpers.
abstract contract ProtocolFixture is TestBase {
    uint256 internal constant UNBONDING = 3_600;
    uint256 internal constant LAZY_SLASH_BPS = 2_000;
    uint256 internal constant SUBMIT = 600;
    uint256 internal constant COMMIT = 300;
    uint256 internal constant REVEAL = 300;
    uint256 internal constant VOTE = 300;
    uint8 internal constant ACCEPT = 1;
    uint8 internal constant REJECT = 2;
    uint8 internal constant UNAVAILABLE = 3;
    string internal constant CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

    IERC20 internal token;
    StakeManager internal stakes;
    RewardDistributor internal distributor;
    AttestationRegistry internal registry;
    TaskEscrow internal escrow;
    HoneypotRegistry internal honeypots;

    /// @notice Deploy the protocol over `token_` from this contract.
    function deployProtocol(IERC20 token_) internal {
        token = token_;
        address escrowAddress = createAddress(address(this), vm.getNonce(address(this)) + 3);
        address honeypotAddress = createAddress(address(this), vm.getNonce(address(this)) + 4);
        stakes = new StakeManager(token_, ITaskEscrow(escrowAddress), honeypotAddress, address(0), UNBONDING);
        distributor = new RewardDistributor(token_, escrowAddress);
        registry = new AttestationRegistry(escrowAddress, IAppealCourt(address(0)));
        escrow = new TaskEscrow(token_, stakes, distributor, registry, UNBONDING);
        require(address(escrow) == escrowAddress, "escrow address");
        honeypots = new HoneypotRegistry(escrow, LAZY_SLASH_BPS);
        require(address(honeypots) == honeypotAddress, "honeypot registry address");
    }

    /// @notice The address of the contract `deployer` creates with `nonce` (keccak(rlp([deployer, nonce]))).
    function createAddress(address deployer, uint256 nonce) internal pure returns (address) {
        require(nonce < 0x100, "nonce");
        bytes memory rlp = nonce == 0
            ? abi.encodePacked(bytes1(0xd6), bytes1(0x94), deployer, bytes1(0x80))
            : nonce < 0x80
                ? abi.encodePacked(bytes1(0xd6), bytes1(0x94), deployer, uint8(nonce))
                : abi.encodePacked(bytes1(0xd7), bytes1(0x94), deployer, bytes1(0x81), uint8(nonce));
        return address(uint160(uint256(keccak256(rlp))));
    }

    /// @notice The parameters of tests/contracts/chainworld.py's default task, starting in 100 s.
    function defaultParams() internal view returns (ITaskEscrow.TaskParams memory p) {
        p.specHash = keccak256("spec");
        p.specCid = CID;
        p.initialModelHash = keccak256("model 0");
        p.initialModelCid = CID;
        p.numRounds = 3;
        p.rewardPerRound = 1e18;
        p.validatorShareBps = 2_000;
        p.minTrainerStake = 1e20;
        p.minValidatorStake = 1e20;
        p.quorum = 2;
        p.maxTrainers = 8;
        p.maxValidators = 8;
        p.submitDuration = uint32(SUBMIT);
        p.commitDuration = uint32(COMMIT);
        p.revealDuration = uint32(REVEAL);
        p.voteDuration = uint32(VOTE);
        p.seedDelay = 2;
        p.sampleRollouts = 4;
        p.sampleSteps = 2;
        p.trainerSlashBps = 1_000;
        p.validatorSlashBps = 500;
        p.maxEmptyRounds = 2;
        p.startTime = uint64(block.timestamp + 100);
    }

    /// @notice `who` stakes `amount` (minted by `mint`) and allocates `allocation` of it to `taskId`.
    function stakeAndAllocate(address who, uint256 amount, uint256 taskId, uint256 allocation) internal {
        vm.startPrank(who);
        token.approve(address(stakes), amount);
        stakes.stake(amount);
        if (allocation != 0) stakes.allocate(taskId, allocation);
        vm.stopPrank();
    }

    function join(address who, uint256 taskId, ITaskEscrow.Role role) internal {
        vm.prank(who);
        escrow.joinTask(taskId, role);
    }

    function submit(address trainer, uint256 taskId, uint256 round, uint256 workUnits) internal {
        bytes32 tag = keccak256(abi.encode(taskId, round, trainer));
        vm.prank(trainer);
        escrow.submitWork(taskId, round, tag, CID, tag, CID, tag, tag, workUnits);
    }

    /// @notice Draw the current round's seed: arm it if a deadline closed the submit phase, then roll past
    /// the seed block.
    function drawSeed(uint256 taskId) internal {
        ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
        if (s.seedBlock == 0) {
            escrow.drawSeed(taskId);
            s = escrow.taskState(taskId);
        }
        if (block.number <= s.seedBlock) vm.roll(uint256(s.seedBlock) + 1);
        require(escrow.drawSeed(taskId), "seed not drawn");
    }

    /// @notice A verdict vector with `verdict` for each of `n` submissions.
    function uniform(uint8 verdict, uint256 n) internal pure returns (uint256 word) {
        for (uint256 i = 0; i < n; ++i) {
            word |= uint256(verdict) << (2 * i);
        }
    }

    function salt(uint256 taskId, uint256 round, address validator) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", taskId, round, validator));
    }

    function commit(address validator, uint256 taskId, uint256 round, uint256 verdicts) internal {
        bytes32 commitment = keccak256(abi.encode(taskId, round, validator, verdicts, salt(taskId, round, validator)));
        vm.prank(validator);
        registry.commitVerdicts(taskId, round, commitment);
    }

    function reveal(address validator, uint256 taskId, uint256 round, uint256 verdicts) internal {
        vm.prank(validator);
        registry.revealVerdicts(taskId, round, verdicts, salt(taskId, round, validator));
    }

    function voteSalt(uint256 taskId, uint256 round, address validator) internal pure returns (bytes32) {
        return keccak256(abi.encode("vote salt", taskId, round, validator));
    }

    /// @notice Commit a model vote for `modelHash` (the vote commit phase must be open).
    function commitVote(address validator, uint256 taskId, uint256 round, bytes32 modelHash) internal {
        bytes32 commitment = keccak256(
            abi.encode(taskId, round, validator, modelHash, keccak256(bytes(CID)), voteSalt(taskId, round, validator))
        );
        vm.prank(validator);
        registry.commitModelVote(taskId, round, commitment);
    }

    /// @notice Reveal the vote `commitVote` committed (the vote reveal phase must be open).
    function revealVote(address validator, uint256 taskId, uint256 round, bytes32 modelHash) internal {
        vm.prank(validator);
        registry.voteModel(taskId, round, modelHash, CID, voteSalt(taskId, round, validator));
    }

    /// @notice Move the clock to the end of the vote commit unless every revealer committed a vote.
    function closeVoteCommit(uint256 taskId, uint256 round) internal {
        IAttestationRegistry.Ballot memory b = registry.ballotOf(taskId, round);
        if (b.voteCommitted != b.revealed && block.timestamp < b.voteCommitEnd) vm.warp(b.voteCommitEnd);
    }

    /// @notice Move the clock past the ballot of `round`.
    function closeBallot(uint256 taskId, uint256 round) internal {
        IAttestationRegistry.Ballot memory b = registry.ballotOf(taskId, round);
        if (block.timestamp < b.voteEnd) vm.warp(b.voteEnd);
    }
}
