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

## The main job: the native libraries checked, then flows/demo.yaml on the real samples: tiles of
## both slides cached at three magnifications, MAMIM pretraining, fine-tuning on the labelled
## nucleus patches with test metrics, streaming evaluation of the slides (heatmaps, slide scores).
## It ends by printing the run report's path (runs/demo/report.md).
demo: samples build
	$(RELEASE)/ssmamba selfcheck
	$(RELEASE)/ssmamba inspect data/samples/cmu_small_region.svs
	$(RELEASE)/ssmamba run flows/demo.yaml --overwrite

## The test suite, built optimised (numeric tests are many times slower in a debug build).
test: samples
	$(SWIFT) test -c release --disable-swift-testing

## Benchmarks (never tests): tensor kernels, then the model against PyTorch in the same run.
## `make bench QUICK=1` runs every case small.
bench: samples build
	@scripts/peers/install.sh
	$(RELEASE)/Benchmarks tensor $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks regions $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks cache $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks stream $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks stain $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks pipeline $(if $(QUICK),--quick)
	$(RELEASE)/Benchmarks model-suite $(if $(QUICK),--quick)

clean-cache:
	find cache -mindepth 1 ! -name README.md -exec rm -rf {} +
