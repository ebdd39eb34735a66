"""The future-block seed: armed when submissions close, never drawn early, re-armed when too late."""

from __future__ import annotations

import pytest
from chainworld import World, logs, reverts

from protocol.contracts import Phase, TaskStatus

pytestmark = pytest.mark.chain


def test_seed_is_the_hash_of_the_armed_block_and_opens_the_ballot(world: World) -> None:
    task_id = world.setup_task(seed_delay=3)
    world.submit_all(task_id, 0)  # the last submission arms the seed
    seed_block = world.initiator.task_state(task_id).seed_block
    assert seed_block == world.chain.block_number() + 3

    def too_early() -> None:
        # Gas estimation runs on the latest block or the next one, depending on the node.
        latest = world.chain.block_number()
        error = reverts("SeedTooEarly", seedBlock=seed_block)(lambda: world.initiator.draw_seed(task_id))
        assert error.values["blockNumber"] in (latest, latest + 1)

    too_early()
    world.chain.mine(2)  # the next block is the seed block itself: still too early
    too_early()
    world.chain.mine(2)
    receipt = world.initiator.client.transact(world.deployment.task_escrow.functions.drawSeed(task_id))
    expected = bytes(world.chain.w3.eth.get_block(seed_block)["hash"])
    assert logs(world.deployment.task_escrow, "SeedDrawn", receipt) == [
        {"taskId": task_id, "round": 0, "seedBlock": seed_block, "seed": expected}
    ]
    (opened,) = logs(world.deployment.attestation_registry, "VotingOpened", receipt)
    assert (opened["round"], opened["submissions"], opened["expectedValidators"], opened["quorum"]) == (
        0,
        3,
        3,
        2,
    )
    assert world.initiator.seed_of(task_id, 0) == expected
    assert world.initiator.task_state(task_id).seed_drawn
    assert world.initiator.round_result_of(task_id, 0) == (0, 0, True)
    assert world.initiator.phase_of(task_id, 0) == Phase.COMMIT
    reverts("SeedAlreadyDrawn", taskId=task_id, round=0)(lambda: world.initiator.draw_seed(task_id))


def test_deadline_close_arms_on_the_first_call(world: World) -> None:
    task_id = world.setup_task()
    world.submit_all(task_id, 0, world.trainers[:2])  # the third trainer never submits
    state = world.initiator.task_state(task_id)
    assert state.seed_block == 0
    reverts("SubmitPhaseOpen", taskId=task_id, round=0, submitEnd=state.submit_end)(
        lambda: world.initiator.draw_seed(task_id)
    )
    world.warp_to(state.submit_end)
    receipt = world.initiator.client.transact(world.deployment.task_escrow.functions.drawSeed(task_id))
    (armed,) = logs(world.deployment.task_escrow, "SeedArmed", receipt)
    assert armed == {"taskId": task_id, "round": 0, "seedBlock": receipt["blockNumber"] + 2}
    assert world.initiator.task_state(task_id).seed_block == receipt["blockNumber"] + 2
    seed = world.draw(task_id)
    assert seed == world.initiator.seed_of(task_id, 0)
    assert world.initiator.ballot_of(task_id, 0).submissions == 2


def test_too_late_re_arms_instead_of_drawing(world: World) -> None:
    task_id = world.setup_task()
    world.submit_all(task_id, 0)
    seed_block = world.initiator.task_state(task_id).seed_block
    # blockhash() only sees the last 256 blocks: one block beyond that window is too late.
    world.chain.mine(seed_block + 256 - world.chain.block_number())
    assert world.initiator.draw_seed(task_id) is None
    state = world.initiator.task_state(task_id)
    assert state.seed_block == world.chain.block_number() + 2
    assert not state.seed_drawn
    assert world.initiator.seed_of(task_id, 0) == bytes(32)
    world.chain.mine(3)
    seed = world.initiator.draw_seed(task_id)
    assert seed == bytes(world.chain.w3.eth.get_block(state.seed_block)["hash"])


def test_the_last_blockhash_in_the_window_still_draws(world: World) -> None:
    task_id = world.setup_task()
    world.submit_all(task_id, 0)
    seed_block = world.initiator.task_state(task_id).seed_block
    world.chain.mine(seed_block + 255 - world.chain.block_number())  # next tx: block seed_block + 256
    assert world.initiator.draw_seed(task_id) == bytes(world.chain.w3.eth.get_block(seed_block)["hash"])


def test_draw_seed_reverts(world: World) -> None:
    reverts("UnknownTask", taskId=8)(lambda: world.initiator.draw_seed(8))
    task_id = world.setup_task()
    state = world.initiator.task_state(task_id)
    world.warp_to(state.submit_end)
    reverts("NoSubmissions", taskId=task_id, round=0)(lambda: world.initiator.draw_seed(task_id))
    cancelled = world.create_task()
    world.initiator.cancel_task(cancelled)
    reverts("TaskNotActive", taskId=cancelled, status=TaskStatus.CANCELLED)(
        lambda: world.initiator.draw_seed(cancelled)
    )
