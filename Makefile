# classpulse — the two commands are `make demo` and `make test`.
# Everything else here is a step they use, or a benchmark.

GO       ?= go
GOTEST   := $(GO) test -race -count=1 -timeout 20m
FUZZTIME ?= 5s

.DEFAULT_GOAL := help
.PHONY: help demo test test-deps build lint fuzz bench-pipeline clean-models

include $(wildcard mk/*.mk)

help:
	@echo "make demo   run the whole product on its embedded default (http://127.0.0.1:8080)"
	@echo "make test   install what the tests need (Debian/npm packages, model files) and run every test"
	@echo "make edge   build the capture client bin/classpulse-edge and its model files"

# The demo needs nothing but Go: broker, Redis and dashboard are embedded.
demo:
	$(GO) run ./cmd/classpulse demo

build:
	$(GO) build -o bin/classpulse ./cmd/classpulse

# Debian packages the tests talk to; idempotent, fast when already there.
test-deps:
	@scripts/install-deps.sh

test: test-deps models deploy-check lint
	$(GOTEST) ./...
	$(MAKE) --no-print-directory fuzz

# gofmt, go vet and staticcheck must be clean. staticcheck is built from the
# Go module proxy once (pinned), into GOBIN, when it is missing. The pin is
# the module version (v0.6.1 is release 2025.1.1): the proxy stopped serving
# the release name as a version.
STATICCHECK_VERSION ?= v0.6.1
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) models
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt -w needed on:" >&2; echo "$$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Every fuzz target of outside input, briefly (FUZZTIME each); corpora live
# in each package's testdata/fuzz. Go's fuzzer sometimes reports its own
# time limit as "context deadline exceeded" without a failing input; such a
# run is repeated, while a real finding (a failing input) fails at once.
fuzz:
	@set -e; for spec in \
		./stream:FuzzDecode ./stream:FuzzDecodeFastMatchesReference ./stream:FuzzTileEncodingMatchesReference \
		./rules:FuzzLoadPolicy \
		./dashboard:FuzzParseToken ./dashboard:FuzzParseClientMsg ./dashboard:FuzzStepBody ./dashboard:FuzzClientIP ./dashboard/fanout:FuzzFrameParser \
		./stream/spool:FuzzSegmentFile ./stream/spool:FuzzCursor ./vision/models:FuzzParseManifest ./vision/models:FuzzDecodeBlazeFace ./vision/models:FuzzParseTFLite \
		./profile:FuzzLoadModel ./profile:FuzzReadCSV ./profile:FuzzReadJSONL ./profile/learner:FuzzParse ./stream/replay:FuzzParseLine \
		./ingest:FuzzDecodeStatements ./ingest:FuzzParseDuration ./ingest:FuzzImportCSV \
		./stream/state:FuzzRollingMatchesReference ./stream/state:FuzzReadReply \
		; do pkg=$${spec%%:*}; fn=$${spec##*:}; \
		log=$$(mktemp); echo "fuzz $$pkg $$fn"; \
		ok=0; for try in 1 2 3; do \
			if $(GO) test $$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) >$$log 2>&1; then ok=1; break; fi; \
			grep -qi "failing input" $$log && break; \
			grep -q "context deadline exceeded" $$log || break; \
			echo "  (the fuzzing engine's own deadline race, not a finding: again)"; \
		done; \
		if [ $$ok = 0 ]; then tail -40 $$log; rm -f $$log; exit 1; fi; \
		rm -f $$log; done
