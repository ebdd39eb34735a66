"""What a node writes outside a terminal (`Output`): UTC-stamped lines fit for journalctl, a start, progress
and done line for every long step, countdowns of one wait at most every `every` seconds, and the same
events as JSON lines with `--log-json` (no chain)."""

from __future__ import annotations

import io
import json
import re
import time

from protocol.roles.base import Output

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_plain_lines_are_utc_stamped_and_countdowns_rate_limited() -> None:
    stream = io.StringIO()
    out = Output("trainer", every=60, stream=stream)
    out.log("joined task 1 as trainer from round 0")
    for left in range(30, 0, -1):  # a countdown polled every second: one line, not thirty
        out.status(f"round 0 opens 12:00:{left:02d} UTC (in {left} s)")
    out.status("round 0: submitted; waiting for the seed and the verdicts")  # a new wait: logged at once
    out.status("round 0: submitted; waiting for the seed and the verdicts")  # the same: not again
    lines = stream.getvalue().splitlines()
    assert [re.sub(STAMP, "T", line) for line in lines] == [
        "T trainer: joined task 1 as trainer from round 0",
        "T trainer: round 0 opens 12:00:30 UTC (in 30 s)",
        "T trainer: round 0: submitted; waiting for the seed and the verdicts",
    ]


def test_a_long_step_logs_start_progress_and_done() -> None:
    stream = io.StringIO()
    out = Output("validator", every=0.2, stream=stream)
    with out.progress("round 2: checking submission 1 of 0xabc", 3) as step:
        step(1)
        step.note("replaying 8 rollouts")
        time.sleep(0.5)
        step(2)
    what = "T validator: round 2: checking submission 1 of 0xabc"
    lines = [re.sub(STAMP, "T", line) for line in stream.getvalue().splitlines()]
    assert lines[0] == f"{what}: started"
    progress = lines[1:-1]
    assert progress, lines
    assert all(
        re.fullmatch(
            r"T validator: round 2: checking submission 1 of 0xabc: 1/3, \d+ s so far; replaying 8 rollouts",
            p,
        )
        for p in progress
    ), progress
    assert re.fullmatch(
        r"T validator: round 2: checking submission 1 of 0xabc: done in 0\.\d s", lines[-1]
    ), lines


def test_json_lines_carry_the_same_events() -> None:
    stream = io.StringIO()
    out = Output("initiator", json_lines=True, every=0.2, stream=stream)
    out.log("created task 1")
    with out.progress("warm start", None) as step:
        step.note("step 100: loss 1.2, eval accuracy 0.1")
        time.sleep(0.3)
    out.status("task 1: round 0")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["event"] for r in records][:2] == ["log", "start"]
    assert [r["event"] for r in records][-2:] == ["done", "status"]
    assert {r["event"] for r in records[2:-2]} == {"progress"}
    for r in records:
        assert re.fullmatch(STAMP, r["time"])
        assert r["role"] == "initiator"
    assert records[2]["message"].endswith("; step 100: loss 1.2, eval accuracy 0.1")
    assert records[-2]["step"] == "warm start"
    assert records[-2]["elapsed_s"] >= 0.3


def test_a_step_retried_every_poll_logs_its_start_once_per_period() -> None:
    """A validator waiting for an artifact retries its check every poll: one start line, not one a poll."""
    stream = io.StringIO()
    out = Output("validator", every=60, stream=stream)
    for _ in range(5):
        try:
            with out.progress("round 0: checking submission 0", 1):
                raise LookupError("artifact not there yet")
        except LookupError:
            pass
    with out.progress("round 0: checking submission 0", 1) as step:
        step(1)
    lines = [re.sub(STAMP, "T", line) for line in stream.getvalue().splitlines()]
    assert lines[0] == "T validator: round 0: checking submission 0: started"
    assert len(lines) == 2, lines
    assert re.fullmatch(r"T validator: round 0: checking submission 0: done in \d\.\d s", lines[1])
