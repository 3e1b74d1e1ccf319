// Package deploy holds what runs classpulse outside `classpulse demo`: the
// compose stack (compose.yaml, nginx/, kafka/), the Kubernetes manifests
// (k8s/), the Prometheus alert rules (prometheus/), the Grafana dashboard
// (grafana/), the server and edge image builds (docker/) and the one-machine
// scale harness (scale/). Operating it is docs/operations.md.
//
// The package has no code of its own. Its tests are what keep the files
// honest although no Docker engine or Kubernetes cluster runs in CI: every
// manifest is decoded strictly into the Kubernetes API types, the compose
// file into a strict model of the compose format, the topic table, the
// policy and the flags' environment variables are checked against the code,
// and the dashboard and alert rules may only name metrics the code exports.
// promtool checks and unit-tests the rules (`make deploy-check`).
package deploy
