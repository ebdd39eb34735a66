// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {StakeManager} from "../../contracts/StakeManager.sol";
import {IStakeManager} from "../../contracts/interfaces/IStakeManager.sol";
import {ITaskEscrow} from "../../contracts/interfaces/ITaskEscrow.sol";
import {BurnBlockToken} from "../../contracts/test/BurnBlockToken.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @notice The StakeManager alone, with this contract as its escrow: it slashes, and answers
/// `lockedUntil` with whatever a test sets.
contract StakeManagerTest is TestBase {
    address internal constant STAKER = address(0xA11CE);
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;
    uint256 internal constant TASK = 7;

    BurnBlockToken internal token;
    StakeManager internal stakes;
    uint256 internal lockedUntilValue;

    function setUp() public {
        token = new BurnBlockToken();
        token.setBlockBurn(false);
        stakes = new StakeManager(token, ITaskEscrow(address(this)), address(0), address(0), 3_600);
    }

    /// @notice The escrow's view that {StakeManager-deallocate} consults.
    function lockedUntil(uint256, address) external view returns (uint256) {
        return lockedUntilValue;
    }

    function _stake(uint256 amount, uint256 allocation) internal {
        token.mint(STAKER, amount);
        vm.startPrank(STAKER);
        token.approve(address(stakes), amount);
        stakes.stake(amount);
        if (allocation != 0) stakes.allocate(TASK, allocation);
        vm.stopPrank();
    }

    function testFuzz_slash_neverExceedsTheAllocation(uint256 staked, uint256 allocation, uint256 amount) public {
        staked = bound(staked, 1, type(uint128).max);
        allocation = bound(allocation, 0, staked);
        _stake(staked, allocation);

        uint256 slashed = stakes.slash(STAKER, TASK, amount);

        uint256 expected = amount < allocation ? amount : allocation;
        vm.assertEq(slashed, expected, "slashed = min(amount, allocation)");
        vm.assertEq(stakes.allocationOf(STAKER, TASK), allocation - expected, "allocation left");
        (uint256 bonded, uint256 allocated,,) = stakes.stakeOf(STAKER);
        vm.assertEq(bonded, staked - expected, "bonded");
        vm.assertEq(allocated, allocation - expected, "allocated");
        vm.assertEq(stakes.totalStake(), staked - expected, "total stake");
        vm.assertEq(token.balanceOf(BURN), expected, "burned");
        vm.assertEq(token.balanceOf(address(stakes)), stakes.totalStake() + stakes.unburned(), "tokens held");
    }

    function testFuzz_slash_repeatedNeverTakesMoreThanWasAllocated(uint256 allocation, uint256[4] memory amounts)
        public
    {
        allocation = bound(allocation, 1, 1e30);
        _stake(allocation, allocation);
        uint256 total;
        for (uint256 i = 0; i < amounts.length; ++i) {
            total += stakes.slash(STAKER, TASK, bound(amounts[i], 0, 1e30));
        }
        vm.assertLe(total, allocation, "slashes in all");
        vm.assertEq(stakes.allocationOf(STAKER, TASK), allocation - total, "allocation left");
    }

    function testFuzz_slash_keepsARefusedBurnAsUnburned(uint256 allocation, uint256 amount) public {
        allocation = bound(allocation, 1, 1e30);
        _stake(allocation, allocation);
        token.setBlockBurn(true);

        uint256 slashed = stakes.slash(STAKER, TASK, amount);

        vm.assertEq(stakes.unburned(), slashed, "unburned");
        vm.assertEq(token.balanceOf(address(stakes)), stakes.totalStake() + stakes.unburned(), "tokens held");
        if (slashed == 0) return;
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.BurnRefused.selector, slashed));
        stakes.flushBurn();
        token.setBlockBurn(false);
        vm.assertEq(stakes.flushBurn(), slashed, "flushed");
        vm.assertEq(token.balanceOf(BURN), slashed, "burned at last");
        vm.assertEq(stakes.unburned(), 0, "nothing left unburned");
    }

    function test_slash_onlyTheEscrow() public {
        _stake(100, 100);
        vm.prank(STAKER);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotSlasher.selector, STAKER));
        stakes.slash(STAKER, TASK, 1);
    }

    function testFuzz_deallocate_onlyOnceTheLockEnds(uint256 lockedUntil_, uint256 now_, uint256 amount) public {
        _stake(1_000, 1_000);
        amount = bound(amount, 1, 1_000);
        lockedUntilValue = lockedUntil_;
        now_ = bound(now_, block.timestamp, type(uint64).max);
        vm.warp(now_);
        if (now_ < lockedUntil_) {
            vm.expectRevert(
                abi.encodeWithSelector(IStakeManager.AllocationLocked.selector, STAKER, TASK, lockedUntil_)
            );
        }
        vm.prank(STAKER);
        stakes.deallocate(TASK, amount);
        if (now_ >= lockedUntil_) vm.assertEq(stakes.allocationOf(STAKER, TASK), 1_000 - amount, "released");
    }

    function testFuzz_unstakeAndWithdraw_payExactlyTheFreeStake(uint256 staked, uint256 allocation, uint256 amount)
        public
    {
        staked = bound(staked, 1, type(uint128).max);
        allocation = bound(allocation, 0, staked);
        _stake(staked, allocation);
        uint256 free = staked - allocation;
        amount = bound(amount, 1, staked);
        vm.prank(STAKER);
        if (amount > free) {
            vm.expectRevert(
                abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, STAKER, free, amount)
            );
            stakes.requestUnstake(amount);
            return;
        }
        stakes.requestUnstake(amount);
        vm.prank(STAKER);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.StillUnbonding.selector, STAKER, block.timestamp + 3_600, block.timestamp)
        );
        stakes.withdraw();
        vm.warp(block.timestamp + 3_600);
        vm.prank(STAKER);
        vm.assertEq(stakes.withdraw(), amount, "withdrawn");
        vm.assertEq(token.balanceOf(STAKER), amount, "paid");
        vm.assertEq(stakes.totalStake(), staked - amount, "total stake");
        vm.prank(STAKER);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NothingToWithdraw.selector, STAKER));
        stakes.withdraw();
    }
}
