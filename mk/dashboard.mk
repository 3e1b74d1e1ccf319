# Dashboard targets, included by the top-level Makefile.
# `make test` should depend on dashboard-test-deps and run dashboard-test.

DASHBOARD_PKGS := ./dashboard/...

.PHONY: dashboard-test-deps dashboard-test dashboard-fuzz bench-fanout

# chromium for the browser tests, redis-server for the live feed; idempotent.
dashboard-test-deps:
	@scripts/install-deps.sh chromium redis-server

dashboard-test: dashboard-test-deps
	go test -count=1 $(DASHBOARD_PKGS)

# A short run of every fuzz target of the dashboard (token, API bodies, WS frames).
dashboard-fuzz:
	go test ./dashboard -run '^$$' -fuzz '^FuzzParseToken$$' -fuzztime 20s
	go test ./dashboard -run '^$$' -fuzz '^FuzzParseClientMsg$$' -fuzztime 20s
	go test ./dashboard -run '^$$' -fuzz '^FuzzStepBody$$' -fuzztime 20s
	go test ./dashboard -run '^$$' -fuzz '^FuzzClientIP$$' -fuzztime 20s
	go test ./dashboard/fanout -run '^$$' -fuzz '^FuzzFrameParser$$' -fuzztime 20s

# The fan-out figure of issue 6: 5,000 WebSocket clients in a second process.
bench-fanout:
	go run ./cmd/classpulse bench fanout --clients 5000
