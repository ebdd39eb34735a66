"""The long-running roles of the network, one module each, imported from their modules (so that light
commands do not load the ML side):

    protocol.roles.initiator   TaskFile, create_task, InitiatorNode
    protocol.roles.trainer     TrainerNode
    protocol.roles.validator   ValidatorNode (its checks: protocol.verification)
    protocol.roles.settle      Keeper (seeds, finalisation, settlement), claim_credit
    protocol.roles.report      summarize_rounds (what happened, from events)
    protocol.roles.base        Output, RoleNode, ParticipantNode, ensure_joined, top_up

Each role is a class with `step()` (the next due action, testable in-process) and `run()` (the loop).
"""
