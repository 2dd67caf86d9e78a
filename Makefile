# flink-gitops — the targets people expect. `make help` lists them.

SHELL         := bash
GO            ?= go
BIN           := bin/flink-gitops
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X main.version=$(VERSION)
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Integration tests start real kube-apiservers and Flink JVMs: give them time,
# and run at most two test packages at once on a 2-core machine.
TEST_FLAGS    ?= -count=1 -timeout 60m -p 2

.PHONY: help build image image-push image-check matrix test test-matrix test-unit testbed lint demo demo-check bench scale clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/flink-gitops
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/flink-gitops

image: ## build the container image (linux/amd64, linux/arm64) as an OCI layout in bin/image, no Docker needed
	$(GO) run ./deploy/image -out bin/image -version $(VERSION)

image-push: ## build the image and push it: make image-push REGISTRY=registry.example.com/flink-gitops:TAG
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=host/repo:tag"; exit 2; }
	$(GO) run ./deploy/image -out bin/image -version $(VERSION) -push $(REGISTRY)

image-check: ## build the image twice from source: same digest, and its binary runs
	FLINK_GITOPS_IMAGE_BUILD=1 $(GO) test -count=1 -timeout 30m -run TestBuildFromSource -v ./deploy/image/

matrix: ## the heaviest test-bed tests on every Flink version (make test runs their second version only here)
	FLINK_GITOPS_MATRIX=1 $(GO) test -count=1 -timeout 90m -p 1 -run 'TestRescaleInPlaceTestbed|TestCheckpointsOnRequest|TestRestartFailedJobOnTestbed|TestHealthCheckRestartOnTestbed|TestLastStateMaxCheckpointAgeOnTestbed' -v ./lifecycle/

test-matrix: ## the Flink version contract suite on every version the test bed runs, 1.18 … 2.3 (make test: 1.18 and 2.3, the client contract on 1.20 and 2.2 too)
	bash tests/scripts/build-flink.sh all >/dev/null
	FLINK_GITOPS_VERSIONS=all $(GO) test -count=1 -timeout 120m -p 1 -run '^(TestContract|TestContractRescale|TestVersionContract)$$' -v ./flinkclient/ ./lifecycle/

testbed: ## build and cache the test bed (kube-apiserver, etcd, Flink jars, test job, sshd, Gitea, versitygw S3)
	bash tests/scripts/testbed.sh

test: testbed build ## run every test: unit and integration against the real test bed, then the demo story
	@# The log keeps everything; on failure the names of the failed tests come
	@# last (a CI log's tail would otherwise be a control-plane dump).
	@set -o pipefail; $(GO) test $(TEST_FLAGS) ./... 2>&1 | tee bin/test.log || { \
		echo; echo "=== failed (full log: bin/test.log) ==="; \
		grep -E -- '--- FAIL|^FAIL|^panic:|test timed out' bin/test.log | tail -60; exit 1; }
	$(MAKE) demo-check

test-unit: ## the fast loop: unit tests only, no test bed
	$(GO) test -short -count=1 ./...

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

demo: testbed build ## the local stack plus the daemon on examples-repo; Ctrl-C stops it
	$(GO) run ./tests/cmd/demo -binary $(BIN)

demo-check: testbed build ## the demo story without a person: deploy, savepoint upgrade, suspend, resume
	$(GO) run ./tests/cmd/demo -binary $(BIN) -check

bench: ## benchmarks (results are recorded in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

scale: testbed build ## the fleet load harness, not in make test: SCALE_N (1000) FlinkDeployments, simulated JobManagers; SCALE_RECORD=docs/benchmarks.md appends the numbers
	SCALE_HARNESS=1 SCALE_BINARY=$(abspath $(BIN)) $(GO) test -count=1 -timeout 180m -run '^TestScale$$' -v ./tests/scale/

clean: ## remove build outputs (not the test bed cache)
	rm -rf bin
