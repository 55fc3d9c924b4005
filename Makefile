# Mesh for Go — developer entry points. `make demo` runs a real local
# two-node cluster; `make test` runs everything CI runs.

GO ?= go
# The oldest Go release the module supports: its go directive.
GO_FLOOR := $(shell sed -n 's/^go //p' go.mod)
# The race detector checks the public package, the engine (internal/cluster)
# with the other internal packages, and the test kit: test-stress runs
# STRESSED_PKGS under it six times (with -short), test-race the internal
# packages not in that list once (the list is read from STRESSED_PKGS).
STRESSED_PKGS := ./internal/cluster/ . ./meshtest/...

.PHONY: demo test vet test-go-floor test-race test-tools test-e2e test-website test-rails test-backend test-stress stress deps bench fuzz examples chaos chaos-short upgrade-check

demo:
	bash scripts/demo.sh

test: deps vet test-go-floor test-race test-tools test-e2e test-stress chaos-short test-website test-rails test-backend
	@echo "make test: all suites passed"

deps:
	bash scripts/ensure-deps.sh

# The build tags a user may set (mesh_nometrics, mesh_noetcd) must keep the
# module building; the one test of the etcd-less build runs here too.
vet:
	$(GO) vet ./...
	$(GO) vet -tags mesh_nometrics,mesh_noetcd ./...
	$(GO) test -count=1 -tags mesh_noetcd -run '^TestLeaseEtcdCompiledOut$$' ./internal/cluster/
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# The go directive is the oldest supported release; prove it by vetting the
# module and running the runtime's tests with exactly that toolchain.
test-go-floor:
	GOTOOLCHAIN=go$(GO_FLOOR) $(GO) vet ./...
	GOTOOLCHAIN=go$(GO_FLOOR) $(GO) test -count=1 -timeout 15m . ./internal/...

test-race:
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./internal/... | grep -vxF "$$($(GO) list $(STRESSED_PKGS))")

test-tools:
	$(GO) test -count=1 -timeout 15m ./cmd/... ./bench/loadgen/ ./bench/wrkroutes/ ./bench/typedwork/ ./bench/internal/...
	cd bench/dbos && $(GO) test -count=1 -timeout 5m .

# ./e2e/chaos/ here is the partition suite (TestPartitionPostgres,
# TestPartitionEtcd, TestPartitionPeer: about two minutes, root for network
# namespaces); the soaks
# in that package run only under MESH_CHAOS=1 (make chaos, chaos-short).
# The real-process cluster tests (./e2e/cluster/) run once, the way the
# stress passes run (race detector on the test binary, a busy loop beside
# them, GOMAXPROCS 2): the nodes they start are the same binaries either
# way, and a pass on a loaded machine is the stronger one.
test-e2e:
	$(GO) test -count=1 -timeout 20m -skip '^TestVerifyRemote$$' ./e2e/ ./e2e/chaos/
	STRESS_COUNT=1 STRESS_CPU=2 STRESS_PKGS=./e2e/cluster/ STRESS_E2E_COUNT=0 STRESS_MAX_SECONDS=600 bash scripts/stress.sh

# A short stress pass of the in-process cluster and fault-network tests on a
# loaded machine: three runs of each at GOMAXPROCS 1 and 2, so a race that
# shows one time in ten is seen by the change that introduced it. It runs
# with -short (scripts/stress.sh): the volume tests run in full in
# test-go-floor (without the race detector; their race-relevant paths are
# the ones their -short forms and the other tests take). These packages are
# the race detector's pass over them: test-race leaves them out. The cap
# only stops a pass that hangs: the pass took 650 s of its 1500 on a slow
# 2-vCPU host (2026-12-07, before -short), where a 900 s cap left too little
# room for a host slower still.
test-stress:
	STRESS_COUNT=3 STRESS_PKGS="$(STRESSED_PKGS)" STRESS_E2E_COUNT=0 STRESS_MAX_SECONDS=1500 bash scripts/stress.sh

# The full stress run to do before landing timing-sensitive changes (see the
# README's contributor section); STRESS_* variables tune it.
stress:
	bash scripts/stress.sh

test-website:
	npm --prefix website run build
	$(GO) test -count=1 -timeout 5m ./website/...
	$(GO) test -count=1 -timeout 10m -run Website ./e2e/

# verify-failover.sh runs verify-staged-deploy.sh in full as its first rail
# (its output and logs are kept with the failover rail's), so the staged
# deploy is not run a second time on its own here.
test-rails:
	bash scripts/verify-failover.sh
	bash scripts/verify-public-surface.sh

# The reference backend (examples/reference-backend): its rail runs the
# backend's own tests (scripts/verify.sh) and the 200-job failover proof; the
# e2e test runs scripts/verify-remote.sh against a local pair and checks the
# run changed nothing on either node.
test-backend:
	bash scripts/verify-backend.sh
	$(GO) test -count=1 -timeout 10m -run '^TestVerifyRemote$$' ./e2e/

bench:
	bash bench/run.sh

# The chaos soak (e2e/chaos, scripts/chaos.sh): `chaos` is the long form —
# crash/freeze faults, then partitions in network namespaces (root), 10 min
# each by default; `chaos-short` is crash/freeze only, under 90 s. SEED= and
# CHAOS_DURATION= pass through.
chaos:
	bash scripts/chaos.sh long

chaos-short:
	bash scripts/chaos.sh short

# A rolling upgrade across one protocol version with real processes
# (scripts/upgrade-check.sh): builds the previous protocol's nodes from this
# checkout's git history, so it is not part of `test`, which must pass on any
# clone.
upgrade-check:
	bash scripts/upgrade-check.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzReadFrame -fuzztime 30s ./internal/wire/
	$(GO) test -run '^$$' -fuzz FuzzDecodeMessage -fuzztime 30s ./internal/wire/
	$(GO) test -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 30s ./internal/wire/
	$(GO) test -run '^$$' -fuzz FuzzHandshakeMessages -fuzztime 30s ./internal/handshake/
	$(GO) test -run '^$$' -fuzz FuzzDecodeReply -fuzztime 30s ./internal/operator/
	$(GO) test -run '^$$' -fuzz FuzzResultValue -fuzztime 30s ./internal/operator/
	$(GO) test -run '^$$' -fuzz FuzzParseNodeName -fuzztime 30s ./internal/cluster/
	$(GO) test -run '^$$' -fuzz FuzzRouteKeyHeaders -fuzztime 30s ./internal/cluster/
	$(GO) test -run '^$$' -fuzz FuzzStoredResponse -fuzztime 30s ./internal/exchange/
	$(GO) test -run '^$$' -fuzz FuzzDecodeRetained -fuzztime 30s ./internal/continuity/
	$(GO) test -run '^$$' -fuzz FuzzFrameReader -fuzztime 30s ./internal/recordlog/
