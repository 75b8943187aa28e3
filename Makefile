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

## The main job (until the demo flow lands): the native libraries and kernels checked on this
## machine, the real sample slides inspected and read by resolution, and the model's cost.
demo: samples build
	$(RELEASE)/ssmamba selfcheck
	$(RELEASE)/ssmamba inspect data/samples/cmu_small_region.svs
	$(RELEASE)/ssmamba inspect data/samples/tcga-cr-7395-01a-01-ts1.svs
	@mkdir -p runs/demo
	$(RELEASE)/ssmamba region data/samples/cmu_small_region.svs --x 600 --y 900 --width 448 --height 448 --mpp 1.0 --out runs/demo/cmu-1um.png
	$(RELEASE)/ssmamba region data/samples/tcga-cr-7395-01a-01-ts1.svs --mpp-override 0.25 --x 0 --y 0 --width 560 --height 450 --mpp 2.0 --out runs/demo/tcga-2um.png
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
