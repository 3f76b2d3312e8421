# Two commands on a fresh Debian 12 machine, as root:
#   make demo   installs what is missing, brings up a lab cluster and drives it with dccli
#   make test   installs what is missing and runs every test, lab included
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# rclone: `rclone serve restic` is the rest-server of the backup tests (Debian 12 packages no rest-server).
# busybox: the health probe's test on a busybox userland (sh, df without --output, date without %N).
APT_PACKAGES := openssh-server openssh-client pdsh clustershell restic rclone iproute2 cron util-linux procps dpkg-dev python3-apt python3-venv sudo busybox
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p /run/sshd
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --disable-pip-version-check -e '.[test,train]' > $(VENV)/pip.log 2>&1 \
		|| { tail -40 $(VENV)/pip.log; exit 1; }
	@touch $(STAMP)

demo: setup
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

test: setup
	@$(BIN)/python -m pytest -q tests

lint: setup
	@$(BIN)/ruff check dccli tests bench

bench: setup
	@for b in fanout provision health keys backup train; do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

clean:
	@[ -x $(BIN)/dccli ] && $(BIN)/dccli lab down --name demo || true
	rm -rf $(VENV) .pytest_cache .ruff_cache
