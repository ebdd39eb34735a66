"""The auditor's books, one module of event handlers per contract (see `protocol.audit.ledger`):

state       Books: the records every book reads and writes, the guards, and the one place that flags
stake       StakeManager: stakes, allocations, slashes, burns
credits     RewardDistributor: the escrow total, credits, claims
escrow      TaskEscrow: tasks, joins, submissions, seeds, finalisation, the end of a task, refunds
settlement  TaskEscrow: the settlement of submissions and validators
ballots     AttestationRegistry: ballots, commitments, reveals, decisions, model votes
"""
