# Set-up is two commands: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The oldest azure-mgmt-network nestnet supports (pyproject's floor): tests/azure also run against
# it, in a second venv, so that "supported" means "tested" (issue 9: 30.x once lost routes).
SDK_FLOOR := $(shell sed -n 's/^ *"azure-mgmt-network>=\([0-9.]*\)".*/\1/p' pyproject.toml)
FLOOR   ?= .venv-sdk-floor

.PHONY: demo test test-sdk-floor bench deps clean image

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The README's commands say `nestnet ...` in a new shell and in `lab exec`: as root the venv's entry
# point is linked into /usr/local/bin (on sudo's secure_path too), replacing only a link of ours (a
# nestnet venv's); otherwise the line to activate the venv is printed.
deps: $(BIN)/.installed
	@scripts/system-deps
	@scripts/link-entry-point $(abspath $(BIN))/nestnet
	@$(MAKE) --no-print-directory $(VENV)/node/.installed

# Mermaid's own renderer (npm), for the test that renders `diagram --format mermaid` offline: it
# drives Debian's chromium (no browser download: PUPPETEER_SKIP_DOWNLOAD).
MERMAID_CLI ?= @mermaid-js/mermaid-cli@11.17.0
$(VENV)/node/.installed:
	@if command -v npm >/dev/null 2>&1; then \
	  mkdir -p $(VENV)/node && PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix $(VENV)/node --no-audit --no-fund \
	    --loglevel=error '$(MERMAID_CLI)' && touch $@; \
	else echo "npm missing: the Mermaid rendering test will be skipped (apt-get install npm)" >&2; fi

demo: deps
	$(BIN)/nestnet lab demo

# The systemd hosts' rootfs (tests/lab/test_systemd.py), built once per machine (about 60 s) and
# cached; as root only, like the lab.
image: deps
	@if [ "$$(id -u)" = 0 ]; then $(BIN)/nestnet lab image; fi

test: deps image
	$(BIN)/python -m pytest -q
	$(MAKE) test-sdk-floor

$(FLOOR)/.installed: pyproject.toml
	$(PYTHON) -m venv $(FLOOR)
	$(FLOOR)/bin/pip install -q --upgrade pip
	$(FLOOR)/bin/pip install -q -e '.[test]' 'azure-mgmt-network==$(SDK_FLOOR)'
	touch $@

test-sdk-floor: deps $(FLOOR)/.installed
	@$(FLOOR)/bin/python -c 'import azure.mgmt.network as n; print("tests/azure against azure-mgmt-network", n.VERSION, "(the floor)")'
	$(FLOOR)/bin/python -m pytest -q -p no:cacheprovider tests/azure

bench: deps
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(FLOOR) build src/*.egg-info .pytest_cache
