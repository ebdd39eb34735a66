// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RewardDistributor} from "../../contracts/RewardDistributor.sol";
import {IRewardDistributor} from "../../contracts/interfaces/IRewardDistributor.sol";
import {TestToken} from "../../contracts/test/TestToken.sol";
import {TestBase} from "./utils/TestBase.sol";

/// @notice The RewardDistributor alone, with this contract as its escrow.
contract RewardDistributorTest is TestBase {
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);

    TestToken internal token;
    RewardDistributor internal distributor;

    function setUp() public {
        token = new TestToken();
        distributor = new RewardDistributor(token, address(this));
    }

    function _deposit(uint256 amount) internal {
        token.mint(address(distributor), amount);
        distributor.recordDeposit(1, address(this), amount);
    }

    function _assertBooks() internal view {
        vm.assertEq(
            token.balanceOf(address(distributor)),
            distributor.totalEscrowed() + distributor.totalCredits(),
            "tokens held == escrowed + credits"
        );
    }

    function testFuzz_credit_neverExceedsTheEscrow(uint256 deposit, uint256 amount) public {
        deposit = bound(deposit, 0, type(uint120).max);
        _deposit(deposit);
        if (amount > deposit) {
            vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.CreditExceedsEscrow.selector, amount, deposit));
        }
        distributor.credit(ALICE, amount, 1, 0, IRewardDistributor.CreditReason.TrainerReward);
        _assertBooks();
    }

    function testFuzz_claim_paysEachCreditOnce(uint256 deposit, uint256 a, uint256 b) public {
        deposit = bound(deposit, 3, type(uint120).max);
        a = bound(a, 1, deposit / 3);
        b = bound(b, 1, deposit / 3);
        _deposit(deposit);
        distributor.credit(ALICE, a, 1, 0, IRewardDistributor.CreditReason.TrainerReward);
        distributor.credit(BOB, b, 1, 0, IRewardDistributor.CreditReason.ValidatorReward);
        distributor.credit(ALICE, b, 1, 1, IRewardDistributor.CreditReason.Refund);
        _assertBooks();

        vm.prank(ALICE);
        vm.assertEq(distributor.claim(), a + b, "alice's credits, added up");
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.NothingToClaim.selector, ALICE));
        distributor.claim();
        vm.prank(BOB);
        vm.assertEq(distributor.claim(), b, "bob's credit");
        vm.assertEq(token.balanceOf(ALICE) + token.balanceOf(BOB), a + 2 * b, "paid once each");
        vm.assertEq(distributor.totalEscrowed(), deposit - a - 2 * b, "escrow left");
        _assertBooks();
    }

    function testFuzz_claimFor_paysEachCreditOnceToItsOwner(uint256 deposit, uint256 a, uint256 b) public {
        deposit = bound(deposit, 2, type(uint120).max);
        a = bound(a, 1, deposit / 2);
        b = bound(b, 0, deposit / 2);
        _deposit(deposit);
        distributor.credit(ALICE, a, 1, 0, IRewardDistributor.CreditReason.TrainerReward);
        if (b != 0) distributor.credit(BOB, b, 1, 0, IRewardDistributor.CreditReason.ValidatorReward);
        address[] memory accounts = new address[](3);
        (accounts[0], accounts[1], accounts[2]) = (ALICE, BOB, ALICE);
        vm.prank(address(0xCAFE));
        vm.assertEq(distributor.claimFor(accounts), a + b, "every credit, once");
        vm.assertEq(token.balanceOf(ALICE), a, "alice paid her credit");
        vm.assertEq(token.balanceOf(BOB), b, "bob paid his credit");
        vm.assertEq(token.balanceOf(address(0xCAFE)), 0, "the caller paid nothing");
        vm.assertEq(distributor.totalCredits(), 0, "no credit left");
        _assertBooks();
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.NothingToClaimFor.selector, 3));
        distributor.claimFor(accounts);
    }

    function test_onlyTheEscrowRecordsAndCredits() public {
        vm.startPrank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.OnlyTaskEscrow.selector, ALICE));
        distributor.recordDeposit(1, ALICE, 1);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.OnlyTaskEscrow.selector, ALICE));
        distributor.credit(ALICE, 0, 1, 0, IRewardDistributor.CreditReason.Refund);
        vm.expectRevert(abi.encodeWithSelector(IRewardDistributor.OnlyTaskEscrow.selector, ALICE));
        distributor.open(ALICE);
        vm.stopPrank();
    }
}
