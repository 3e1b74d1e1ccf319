# Deploy and operate (issue 7). Included by the top-level Makefile.
#
#   make deploy-check   promtool: validate alert rules and scrape config, unit-test the alerts
#   make deploy-test    go test of deploy/ (manifests, compose, topics, metrics, runbooks, Redis Cluster harness)
#   make deploy-scale   the one-machine scale run (3-node Redis Cluster; 3 processors when available)
#
# `make test` should run deploy-check (it installs promtool) before the Go
# tests, so TestDashboardQueriesAreValidPromQL runs instead of skipping.

.PHONY: deploy-deps deploy-check deploy-test deploy-scale

# Debian packages: prometheus (promtool) and redis-server/redis-tools for the
# Redis Cluster harness. Idempotent; works as root on a fresh machine.
deploy-deps:
	@scripts/install-deps.sh prometheus redis-server redis-tools

deploy-check: deploy-deps
	promtool check rules deploy/prometheus/rules.yml
	promtool test rules deploy/prometheus/rules_test.yml
	promtool check config deploy/prometheus/prometheus.yml
	sh -n deploy/kafka/create-topics.sh

deploy-test: deploy-check
	go test ./deploy/...

deploy-scale: deploy-deps
	CLASSPULSE_SCALE=1 go test -count=1 -v -timeout 15m -run 'TestScale' ./deploy/scale/
