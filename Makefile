# Conveniences; the README's commands are scripts/demo and scripts/test (no make needed).
.PHONY: bootstrap demo test lint lab-up lab-down bench
bootstrap: ; scripts/bootstrap
demo: ; scripts/demo
test: ; scripts/test
lint: bootstrap
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
lab-up: bootstrap ; .venv/bin/ivr-agent lab up
lab-down: bootstrap ; .venv/bin/ivr-agent lab down
