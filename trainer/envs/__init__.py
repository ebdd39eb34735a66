"""Environments with verifiable rewards: the interface, the built-ins, plugins and their pins.

    base      `Environment` (the interface), `Problem`, `EnvParams`
    builtin   addition, reverse, sort_digits: exact-match rewards, answers a pure function of the prompt
    registry  `get_env(name, params)`: built-ins, `trustrl.envs` entry points, module paths; `env_pin`
    rgym      `reasoning_gym`: an adapter for the reasoning-gym package (optional extra `trustrl[envs]`)

docs/environments.md describes how to write and register one, and how a task spec pins it.
"""

from trainer.envs.base import Environment, EnvParams, Problem
from trainer.envs.builtin import Addition, AdditionParams, ReverseString, SortDigits
from trainer.envs.registry import EnvPin, code_hash, env_class, env_pin, get_env, known_envs

__all__ = [
    "Addition",
    "AdditionParams",
    "EnvParams",
    "EnvPin",
    "Environment",
    "Problem",
    "ReverseString",
    "SortDigits",
    "code_hash",
    "env_class",
    "env_pin",
    "get_env",
    "known_envs",
]
