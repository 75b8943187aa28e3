# The two commands of README.md, and the steps they are made of.
# Every target installs what it needs first (Debian packages, then the sample data).
SWIFT ?= swift
RELEASE := .build/release

.PHONY: deps samples build test demo bench clean-cache

deps:
	@scripts/install-deps.sh

samples: deps
	@scripts/fetch-samples.sh

build: deps
	$(SWIFT) build -c release

## The main job: check the native libraries and the tensor core on this machine.
demo: samples build
	$(RELEASE)/ssmamba selfcheck

## The test suite, built optimised (numeric tests are many times slower in a debug build).
test: samples
	$(SWIFT) test -c release --disable-swift-testing

## Benchmarks (never tests): tensor kernels, then the model against PyTorch in the same run.
## `make bench QUICK=1` runs every case small.
bench: build
	@scripts/peers/install.sh
	$(RELEASE)/Benchmarks tensor $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks model-suite $(if $(QUICK),--quick)

clean-cache:
	find cache -mindepth 1 ! -name README.md -exec rm -rf {} +
