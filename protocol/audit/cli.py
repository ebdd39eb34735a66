"""`trustrl audit`: replay a deployment's history from chain events and IPFS, re-verify, report.

    trustrl audit --task 1 --network net.json --report audit.html --json audit.json

Exit status: 0 when everything agrees, 3 when the audit found discrepancies, 1 when it could not run
(unreachable node, unknown task, ...: one line on stderr). `register_audit(app)` adds the command to the
`trustrl` Typer app; heavy modules are imported only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["EXIT_DISCREPANCIES", "register_audit", "run_audit_command"]

EXIT_DISCREPANCIES = 3
"""Exit status when the audit found something that disagrees."""


def run_audit_command(
    *,
    network: str,
    deployment: Path | None,
    ipfs: str | None,
    task: int | None,
    report: Path | None,
    json_path: Path | None,
    reverify: bool,
    sample: int | None,
    seed: int,
    accuracy: bool,
    to_block: int | None,
    page: int,
    console: Console,
) -> int:
    """Run an audit as the command does and return the exit status (0 or `EXIT_DISCREPANCIES`)."""
    from protocol.audit.report import render_terminal, summarize, write_html, write_json
    from protocol.audit.runner import audit, open_target
    from protocol.ipfs import ArtifactStore
    from protocol.network import load_network

    config = load_network(network, deployment=deployment, ipfs_api=ipfs)
    target = open_target(config.rpc_url, config.deployment)
    store = ArtifactStore(config.ipfs_api, retries=2, backoff=0.25, find_timeout=5.0) if reverify else None
    try:
        with console.status("auditing…") as status:
            result = audit(
                target,
                task=task,
                to_block=to_block,
                page=page,
                store=store,
                sample=sample,
                reverify_seed=seed,
                accuracy=accuracy,
                progress=lambda m: status.update(m),
            )
    finally:
        if store is not None:
            store.close()
    summary = summarize(result)
    render_terminal(summary, console)
    if json_path is not None:
        write_json(summary, json_path)
        console.print(f"JSON written to {json_path}")
    if report is not None:
        write_html(summary, report)
        console.print(f"HTML report written to {report}")
    return 0 if summary["ok"] else EXIT_DISCREPANCIES


def register_audit(app: typer.Typer) -> None:
    """Add the `audit` command to `app`."""

    @app.command("audit")
    def audit_command(
        network: Annotated[
            str,
            typer.Option(
                "--network",
                "-n",
                envvar="TRUSTRL_NETWORK",
                help="A network file (from `trustrl deploy`), an RPC URL (with --deployment), or `local`.",
            ),
        ],
        task: Annotated[
            int | None,
            typer.Option(
                "--task", "-t", min=1, help="The task to audit (default: every task of the deployment)."
            ),
        ] = None,
        deployment: Annotated[
            Path | None,
            typer.Option(
                "--deployment",
                envvar="TRUSTRL_DEPLOYMENT",
                help="Deployment JSON, when --network is an RPC URL.",
            ),
        ] = None,
        ipfs: Annotated[
            str | None,
            typer.Option("--ipfs", envvar="TRUSTRL_IPFS", help="IPFS API (default: the network file's)."),
        ] = None,
        report: Annotated[
            Path | None,
            typer.Option(
                "--report", help="Write a self-contained HTML report (plots, every discrepancy) here."
            ),
        ] = None,
        json_path: Annotated[
            Path | None,
            typer.Option(
                "--json", help="Write the summary as JSON (discrepancies, verified counts, numbers) here."
            ),
        ] = None,
        reverify: Annotated[
            bool,
            typer.Option(
                "--reverify/--no-reverify",
                help="Re-verify the work from IPFS (else: events and balances only).",
            ),
        ] = True,
        sample: Annotated[
            int | None,
            typer.Option("--sample", min=1, help="Submissions re-verified per round (default: all)."),
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the auditor's sample.")] = 0,
        accuracy: Annotated[
            bool,
            typer.Option(
                "--accuracy/--no-accuracy", help="Measure each global checkpoint's held-out accuracy."
            ),
        ] = True,
        to_block: Annotated[
            int | None,
            typer.Option(
                "--to-block", min=0, help="Audit the history up to this block (default: the latest)."
            ),
        ] = None,
        page: Annotated[int, typer.Option("--page", min=1, help="Blocks per eth_getLogs query.")] = 2000,
        threads: Annotated[int | None, typer.Option("--threads", min=1, help="torch CPU threads.")] = None,
    ) -> None:
        """Replay the history from chain events and IPFS, trusting nobody: rebuild every task, round,
        payout, slash and balance, re-verify the work, and report every discrepancy (exit status 3)."""
        from rich.console import Console

        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        code = run_audit_command(
            network=network,
            deployment=deployment,
            ipfs=ipfs,
            task=task,
            report=report,
            json_path=json_path,
            reverify=reverify,
            sample=sample,
            seed=seed,
            accuracy=accuracy,
            to_block=to_block,
            page=page,
            console=Console(),
        )
        if code:
            raise typer.Exit(code)
