# flink-gitops — the targets people expect. `make help` lists them.

GO            ?= go
BIN           := bin/flink-gitops
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X main.version=$(VERSION)
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Integration tests start real kube-apiservers and Flink JVMs: give them time,
# and run at most two test packages at once on a 2-core machine.
TEST_FLAGS    ?= -count=1 -timeout 60m -p 2

.PHONY: help build test test-unit testbed lint demo bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/flink-gitops
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/flink-gitops

testbed: ## build and cache the test bed (kube-apiserver, etcd, Flink jars, test job, sshd)
	bash tests/scripts/testbed.sh

test: testbed ## run every test: unit and integration against the real test bed
	$(GO) test $(TEST_FLAGS) ./...

test-unit: ## the fast loop: unit tests only, no test bed
	$(GO) test -short -count=1 ./...

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

demo: ## the local stack plus the daemon on examples-repo
	@echo "make demo: not there yet. It needs the daemon (issue #9) and the end-to-end work (issue #10)."
	@echo "What works today: 'make build && bin/flink-gitops validate --config FILE', and 'make test'."
	@exit 2

bench: ## benchmarks (results are recorded in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean: ## remove build outputs (not the test bed cache)
	rm -rf bin
