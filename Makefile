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

## The main job (until the training flow lands): the native libraries checked, the real sample
## slides inspected, their tissue cached by the warm-cache flow (tissue → 3 magnifications →
## Macenko → LMDB), tiles exported by a second flow reading through the cache, the model's cost.
demo: samples build
	$(RELEASE)/ssmamba selfcheck
	$(RELEASE)/ssmamba inspect data/samples/cmu_small_region.svs
	$(RELEASE)/ssmamba inspect data/samples/tcga-cr-7395-01a-01-ts1.svs
	$(RELEASE)/ssmamba tissue data/samples/cmu_small_region.svs --out runs/demo/cmu-tissue.png
	$(RELEASE)/ssmamba cache warm flows/warm-cache.yaml
	$(RELEASE)/ssmamba cache verify cache/samples
	$(RELEASE)/ssmamba run flows/export-tiles.yaml
	$(RELEASE)/ssmamba model info ssmamba_tiny

## The test suite, built optimised (numeric tests are many times slower in a debug build).
test: samples
	$(SWIFT) test -c release --disable-swift-testing

## Benchmarks (never tests): tensor kernels, then the model against PyTorch in the same run.
## `make bench QUICK=1` runs every case small.
bench: build
	@scripts/peers/install.sh
	$(RELEASE)/Benchmarks tensor $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks regions $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks cache $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks model-suite $(if $(QUICK),--quick)

clean-cache:
	find cache -mindepth 1 ! -name README.md -exec rm -rf {} +
