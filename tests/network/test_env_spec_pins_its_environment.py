"""The task spec pins its environment (package, version, code hash): a spec whose pin differs from the
installed environment, or a plugin environment without a pin, does not parse, with one line naming the
package and both pins; specs of the built-ins written before pins still parse and keep their bytes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from protocol.artifacts import ArtifactInvalidError, parse_wire
from protocol.ipfs import canonical_json
from protocol.wire import EnvChoice, EnvSpec, check_env
from trainer.envs import env_pin

PLUGIN = "plugin_env:MaxDigit"


def _one_line(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    errors = exc.value.errors()
    assert len(errors) == 1
    message = str(errors[0]["msg"])
    assert "\n" not in message
    return message


def test_a_spec_of_before_pins_parses_and_keeps_its_bytes() -> None:
    spec = EnvSpec.model_validate_json(b'{"name":"addition","params":{"digits":1}}')
    assert canonical_json(spec) == b'{"name":"addition","params":{"digits":1}}'
    assert spec.package is None


def test_pinned_records_the_installed_pin_and_parses_back() -> None:
    for name, params in (("addition", {"digits": 1}), (PLUGIN, {"length": 2})):
        spec = EnvChoice(name=name, params=params).pinned()
        pin = env_pin(name)
        assert (spec.package, spec.version, spec.code_hash) == (pin.package, pin.version, pin.code_hash)
        assert EnvSpec.model_validate_json(canonical_json(spec)) == spec
    assert EnvChoice(name="addition").pinned().package == "trustrl"


@pytest.mark.parametrize("field", ["package", "version", "code_hash"])
def test_a_spec_pinned_to_other_code_is_refused_in_one_line(field: str) -> None:
    pin = env_pin(PLUGIN)
    other = {"package": "someone-else", "version": "9.9", "code_hash": "0x" + "00" * 32}[field]
    given = {"package": pin.package, "version": pin.version, "code_hash": pin.code_hash, field: other}
    with pytest.raises(ValidationError) as refused:
        EnvSpec(name=PLUGIN, params={"length": 2}, **given)
    installed = f"installed package {pin.package} version {pin.version} code_hash {pin.code_hash}"
    assert _one_line(refused) == (
        f"Value error, environment {PLUGIN!r} does not match the installed one: package {given['package']} "
        f"version {given['version']} code_hash {given['code_hash']} expected, {installed}"
    )
    with pytest.raises(ValidationError, match="does not match the installed one"):
        EnvChoice(name=PLUGIN, params={"length": 2}, **given)  # a task file's pin is checked too


def test_a_task_spec_with_a_wrong_pin_is_an_invalid_artifact() -> None:
    pin = env_pin("addition")
    env = {"name": "addition", "package": "trustrl", "version": pin.version, "code_hash": "0x" + "11" * 32}
    with pytest.raises(ArtifactInvalidError) as refused:
        parse_wire(json.dumps(env).encode(), EnvSpec, "the spec")
    assert "\n" not in str(refused.value)
    assert f"installed package trustrl version {pin.version} code_hash {pin.code_hash}" in str(refused.value)


def test_a_plugin_needs_a_pin_in_a_spec_but_not_in_a_task_file() -> None:
    with pytest.raises(ValidationError) as refused:
        EnvSpec(name=PLUGIN)
    assert f"environment {PLUGIN!r} is not pinned" in _one_line(refused)
    assert EnvChoice(name=PLUGIN).package is None
    pin = env_pin(PLUGIN)
    with pytest.raises(ValidationError, match="give all of package, version and code_hash, or none"):
        EnvSpec(name=PLUGIN, package=pin.package, version=pin.version)
    with pytest.raises(ValueError, match="unknown environment 'chess'"):
        check_env(EnvSpec.model_construct(name="chess", params={}))
