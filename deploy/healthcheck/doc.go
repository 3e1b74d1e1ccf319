// Command healthcheck is the container health probe of the classpulse
// server image. The image is distroless (no shell, no curl), so compose's
// healthcheck runs this static binary instead: it GETs one URL and exits 0
// on a 2xx answer, 1 otherwise. It knows nothing of classpulse beyond that;
// Kubernetes probes the same endpoints directly with httpGet.
package main
