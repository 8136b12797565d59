# One entry point for humans and CI. Every target builds the virtualenv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Debian packages some tests need (libfaketime steps the daemon's wall clock; prometheus ships
# promtool for the rule tests and the server the scrape test runs; debootstrap and
# systemd-nspawn boot a Debian register for tests/systemd/test_register.py; python3-venv and
# dpkg-deb build the package; reprepro and gnupg the signed APT repository). Installed when run
# as root (as CI is); otherwise those tests skip and say why (pytest -rs). fuse3 (libfuse 3)
# serves the power-cut filesystem of tests/tools/test_powercut_cuts.py and `make powercut`;
# qemu-system-x86 and e2fsprogs run and read the register VM whose power those cut.
APT_PACKAGES := faketime prometheus debootstrap systemd-container python3-venv fuse3 reprepro gnupg \
	qemu-system-x86 e2fsprogs

# The Debian package: build/pos-agent_$(DEB_VERSION)_<arch>.deb (packaging/deb/build says how).
DEB_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)

.PHONY: test demo bench bench-history chaos chaos-seeds powercut lint clean system-packages deb

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then \
			apt-get update && apt-get install -y --no-install-recommends $$missing; \
		fi; \
	else \
		echo "not root: tests that need $(APT_PACKAGES) will skip (pytest -rs says which)"; \
	fi

test: $(STAMP) system-packages
	$(BIN)/pytest

deb: system-packages
	packaging/deb/build $(DEB_VERSION) build

# A signed APT repository of build/*.deb in build/repo/public (packaging/repo/build says how), in
# the update channel REPO_SUITE (canary or stable), signed with the key REPO_SIGNING_KEY (its
# fingerprint, from GNUPGHOME); without one, a throwaway key in build/repo-gnupg, for trying only.
REPO_SUITE ?= canary
repo: system-packages
	@if [ -n "$${REPO_SIGNING_KEY:-}" ]; then \
		packaging/repo/build build/repo $(REPO_SUITE) build/*.deb; \
	else \
		echo "make repo: no REPO_SIGNING_KEY: signing with a throwaway key in build/repo-gnupg"; \
		GNUPGHOME=$(CURDIR)/build/repo-gnupg \
		REPO_SIGNING_KEY=$$(packaging/repo/test-key $(CURDIR)/build/repo-gnupg) \
		packaging/repo/build build/repo $(REPO_SUITE) build/*.deb; \
	fi

demo: $(STAMP)
	$(BIN)/pos-agent demo

bench: $(STAMP)
	mkdir -p build
	$(BIN)/pos-agent bench --json build/bench.json

# Years of history on one database: N receipts, default a million (~1.5 h on 2 vCPU:
# ~48 min to write the history, ~40 min to archive it).
HISTORY ?= 1000000
bench-history: $(STAMP)
	mkdir -p build
	$(BIN)/pos-agent bench --history $(HISTORY) --json build/bench-history.json

chaos: $(STAMP)
	mkdir -p build
	$(BIN)/pos-agent chaos --json build/chaos.json

# Power cuts (root, FUSE): the state directory on a filesystem that forgets what was not
# synced; sales of every kind, cuts at random calls, an audit after each (docs/architecture.md).
# Beside it the register from our .deb in a qemu guest (image cached in build/vm), its power
# pulled POWERCUT_VM_CUTS times.
POWERCUT_SALES ?= 2000
POWERCUT_CUTS ?= 1000
POWERCUT_VM_CUTS ?= 50
powercut: $(STAMP) system-packages
	mkdir -p build
	$(BIN)/pos-agent powercut --sales $(POWERCUT_SALES) --cuts $(POWERCUT_CUTS) \
		--vm-cuts $(POWERCUT_VM_CUTS) --json build/powercut.json

# The crash harness on many seeds (each its own sales, faults, kills and WAL losses); every seed
# runs, the failed ones are named at the end. ~40 s a seed on 2 vCPU.
CHAOS_SEEDS ?= $(shell seq 1 20)
CHAOS_SEED_RECEIPTS ?= 400
CHAOS_SEED_KILLS ?= 8
chaos-seeds: $(STAMP)
	mkdir -p build
	@failed=""; for seed in $(CHAOS_SEEDS); do \
		$(BIN)/pos-agent chaos --seed $$seed --receipts $(CHAOS_SEED_RECEIPTS) \
			--kills $(CHAOS_SEED_KILLS) --json build/chaos-seed-$$seed.json || failed="$$failed $$seed"; \
	done; \
	if [ -n "$$failed" ]; then echo "chaos failed on seeds:$$failed"; exit 1; fi; \
	echo "chaos passed on seeds $$(echo $(CHAOS_SEEDS))"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy agent offline_store printers
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build .pytest_cache
