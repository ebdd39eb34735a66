# The two commands a newcomer needs (see README.md). Both set up what they need first, idempotently.
.PHONY: demo test setup lint bench

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
