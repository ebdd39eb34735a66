# The two commands a newcomer needs (see README.md). Both set up what they need first, idempotently.
.PHONY: demo test setup lint bench forge forge-deep gas-snapshot invariants-deep

demo:
	./scripts/setup.sh
	.venv/bin/trustrl demo

test:
	./scripts/setup.sh --test
	.venv/bin/python -m pytest -n 2 --dist loadfile

setup:
	./scripts/setup.sh

lint:
	.venv/bin/ruff check protocol trainer tests scripts
	.venv/bin/mypy
	.venv/bin/python scripts/slither_gate.py

# The contracts' own tests (tests/forge/, in CI through tests/contracts/test_forge.py), their deep profile
# (>= 10,000 fuzz and invariant runs), and the gas snapshot rewritten after a deliberate change of gas.
forge:
	bin/forge test --no-match-contract GasSnapshotTest

forge-deep:
	FOUNDRY_PROFILE=deep bin/forge test --no-match-contract GasSnapshotTest

gas-snapshot:
	bin/forge test --isolate --match-contract GasSnapshotTest

# The random-sequence invariant test at depth: 10,000 sequences over eight seeds (long: see docs/contracts.md).
invariants-deep:
	.venv/bin/python scripts/invariants_deep.py --seeds 1 2 3 4 5 6 7 8 --examples 1250 --jobs 2
