# Warning policy engine (issue 4). Included by the top-level Makefile.
#
#   make rules-test    go test of rules/ (every rule at, below and above its thresholds, lifecycle, loader)
#   make rules-fuzz    fuzz the policy loader (RULES_FUZZTIME, default 30s)
#   make rules-bench   the evaluation benchmarks (target: BenchmarkEvaluateDefaultPolicy < 5 µs)
#   make rules-check   load a policy file and report its problems with lines (RULES_POLICY=path)
#
# `make test` should call rules-test. The package needs nothing outside Go.

.PHONY: rules-test rules-fuzz rules-bench rules-check

RULES_FUZZTIME ?= 30s
RULES_POLICY ?= rules/default_policy.yaml

rules-test:
	go test ./rules/...

rules-fuzz:
	go test ./rules -run '^$$' -fuzz '^FuzzLoadPolicy$$' -fuzztime $(RULES_FUZZTIME)

rules-bench:
	go test ./rules -run '^$$' -bench . -benchmem -count 5

rules-check:
	go test ./rules -run '^TestPolicyFile$$' -count=1 -args -policy=$(abspath $(RULES_POLICY))
