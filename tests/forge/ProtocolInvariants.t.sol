// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ITaskEscrow} from "../../contracts/interfaces/ITaskEscrow.sol";
import {BurnBlockToken} from "../../contracts/test/BurnBlockToken.sol";
import {ProtocolHandler} from "./handlers/ProtocolHandler.sol";
import {ProtocolFixture} from "./utils/ProtocolFixture.sol";

/// @notice The core money rules, after every call of a random sequence of the handler's actions:
/// every token is where the books say (conservation), allocations are released only once settled,
/// a slash never exceeds what remains, nothing is credited twice or beyond a task's deposit. One
/// campaign checks all four (forge runs one campaign per `invariant_` function).
contract ProtocolInvariantTest is ProtocolFixture {
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;

    BurnBlockToken internal burnToken;
    ProtocolHandler internal handler;

    function setUp() public {
        burnToken = new BurnBlockToken();
        burnToken.setBlockBurn(false);
        deployProtocol(burnToken);
        handler = new ProtocolHandler(burnToken, stakes, distributor, registry, escrow);
        bytes4[] memory selectors = new bytes4[](23);
        selectors[0] = ProtocolHandler.stake.selector;
        selectors[1] = ProtocolHandler.requestUnstake.selector;
        selectors[2] = ProtocolHandler.withdraw.selector;
        selectors[3] = ProtocolHandler.deallocate.selector;
        selectors[4] = ProtocolHandler.createTask.selector;
        selectors[5] = ProtocolHandler.cancelTask.selector;
        selectors[6] = ProtocolHandler.joinTask.selector;
        selectors[7] = ProtocolHandler.submitWork.selector;
        selectors[8] = ProtocolHandler.drawSeed.selector;
        selectors[9] = ProtocolHandler.commitVerdicts.selector;
        selectors[10] = ProtocolHandler.revealVerdicts.selector;
        selectors[11] = ProtocolHandler.voteModel.selector;
        selectors[12] = ProtocolHandler.finalizeRound.selector;
        selectors[13] = ProtocolHandler.advance.selector;
        selectors[14] = ProtocolHandler.settleSubmission.selector;
        selectors[15] = ProtocolHandler.settleValidator.selector;
        selectors[16] = ProtocolHandler.claim.selector;
        selectors[17] = ProtocolHandler.warp.selector;
        selectors[18] = ProtocolHandler.toggleBurn.selector;
        selectors[19] = ProtocolHandler.flushBurn.selector;
        selectors[20] = ProtocolHandler.settleNoShows.selector;
        selectors[21] = ProtocolHandler.commitModelVote.selector;
        selectors[22] = ProtocolHandler.claimFor.selector;
        targetSelectors(address(handler), selectors);
    }

    /// @dev Views that read the clock see the handler's, not a reset one.
    modifier atHandlerTime() {
        vm.warp(handler.currentTime());
        vm.roll(handler.currentBlock());
        _;
    }

    function invariant_coreMoneyRules() public atHandlerTime {
        checkEveryTokenIsAccountedFor();
        checkNoTaskCreditsMoreThanItsDeposit();
        checkSlashesNeverExceedWhatRemains();
        checkLocksHoldUntilSettled();
    }

    /// @notice Conservation of every token: the supply is exactly what the handler minted; the
    /// StakeManager holds the stakes and the unburned slashes, the RewardDistributor the escrow and the
    /// credits, the escrow and the registry nothing; the burn address exactly the burned slashes; and the
    /// ghost totals of what went in and out agree with each contract's books.
    function checkEveryTokenIsAccountedFor() internal view {
        uint256 held = burnToken.balanceOf(address(stakes)) + burnToken.balanceOf(address(distributor))
            + burnToken.balanceOf(address(escrow)) + burnToken.balanceOf(address(registry))
            + burnToken.balanceOf(address(handler)) + burnToken.balanceOf(BURN);
        for (uint256 i = 0; i < handler.actorCount(); ++i) {
            held += burnToken.balanceOf(handler.actors(i));
        }
        vm.assertEq(burnToken.totalSupply(), handler.ghost_minted(), "supply == minted");
        vm.assertEq(held, burnToken.totalSupply(), "every token is held by someone known");
        vm.assertEq(
            burnToken.balanceOf(address(stakes)), stakes.totalStake() + stakes.unburned(), "StakeManager's tokens"
        );
        vm.assertEq(
            burnToken.balanceOf(address(distributor)),
            distributor.totalEscrowed() + distributor.totalCredits(),
            "RewardDistributor's tokens"
        );
        vm.assertEq(burnToken.balanceOf(address(escrow)) + burnToken.balanceOf(address(registry)), 0, "no float");
        vm.assertEq(
            stakes.totalStake(),
            handler.ghost_staked() - handler.ghost_withdrawn() - handler.ghost_slashed(),
            "stake == staked - withdrawn - slashed"
        );
        vm.assertEq(burnToken.balanceOf(BURN) + stakes.unburned(), handler.ghost_slashed(), "slashes burned or kept");
        uint256 escrowed;
        uint256 credited;
        for (uint256 i = 0; i < handler.taskCount(); ++i) {
            uint256 taskId = handler.tasks(i);
            (uint256 remaining, uint256 reserved) = escrow.fundsOf(taskId);
            escrowed += remaining + reserved;
            credited += handler.ghost_taskCredited(taskId);
        }
        vm.assertEq(escrowed, distributor.totalEscrowed(), "tasks' funds == escrowed");
        vm.assertEq(handler.ghost_deposited() - credited, distributor.totalEscrowed(), "deposited - credited");
        vm.assertEq(credited - handler.ghost_claimed(), distributor.totalCredits(), "credited - claimed");
    }

    /// @notice No double credit: each task has credited exactly its deposit less what it still holds, and
    /// every settlement credited what it owed (counted by the handler).
    function checkNoTaskCreditsMoreThanItsDeposit() internal view {
        for (uint256 i = 0; i < handler.taskCount(); ++i) {
            uint256 taskId = handler.tasks(i);
            (uint256 remaining, uint256 reserved) = escrow.fundsOf(taskId);
            vm.assertEq(
                handler.ghost_taskDeposit(taskId),
                handler.ghost_taskCredited(taskId) + remaining + reserved,
                "deposit == credited + remaining + reserved"
            );
            ITaskEscrow.TaskState memory s = escrow.taskState(taskId);
            if (s.status != ITaskEscrow.TaskStatus.Active) vm.assertEq(remaining, 0, "an ended task keeps no remaining");
        }
        vm.assertEq(handler.ghost_creditViolations(), 0, "a settlement or claim paid other than it owed");
    }

    /// @notice A slash never exceeds what remains: each one took exactly its fraction of the allocation
    /// left (so never more than it), and no allocation ever exceeds the staker's bond.
    function checkSlashesNeverExceedWhatRemains() internal view {
        vm.assertEq(handler.ghost_slashViolations(), 0, "a slash other than fraction * allocation left");
        for (uint256 a = 0; a < handler.actorCount(); ++a) {
            address who = handler.actors(a);
            (uint256 bonded, uint256 allocated,,) = stakes.stakeOf(who);
            vm.assertLe(allocated, bonded, "allocated <= bonded");
            uint256 sum;
            for (uint256 i = 0; i < handler.taskCount(); ++i) {
                sum += stakes.allocationOf(who, handler.tasks(i));
            }
            vm.assertEq(sum, allocated, "allocations add up");
        }
    }

    /// @notice Locks are released only when settled: the escrow's `lockedUntil` is in the future whenever
    /// the rules say the allocation is locked (active task, a settlement owed, within the grace), and no
    /// deallocation ever succeeded in such a state.
    function checkLocksHoldUntilSettled() internal view {
        vm.assertEq(handler.ghost_lockViolations(), 0, "an allocation was released while locked");
        for (uint256 i = 0; i < handler.taskCount(); ++i) {
            uint256 taskId = handler.tasks(i);
            for (uint256 a = 0; a < handler.actorCount(); ++a) {
                address who = handler.actors(a);
                if (!handler.lockedNow(taskId, who)) continue;
                vm.assertTrue(escrow.lockedUntil(taskId, who) > block.timestamp, "locked by the rules, not by the escrow");
                if (escrow.unsettledOf(taskId, who) + escrow.validatorUnsettledOf(taskId, who) != 0) {
                    vm.assertEq(escrow.lockedUntil(taskId, who), type(uint256).max, "owing: locked for good");
                }
            }
        }
    }
}
