# syntax=docker/dockerfile:1
# The server image: `classpulse` (processor, dashboard, simulate, replay,
# bench, token, profile) as one static binary, plus the healthcheck probe for
# compose, on distroless/static. No OpenCV, no shell, no package manager.
#
#   docker build -f deploy/docker/classpulse.Dockerfile -t classpulse:dev .
#
# Build context: the repository root.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOFLAGS=-trimpath go build -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/classpulse ./cmd/classpulse && \
    CGO_ENABLED=0 GOFLAGS=-trimpath go build -ldflags="-s -w" \
        -o /out/healthcheck ./deploy/healthcheck

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/classpulse /usr/local/bin/classpulse
COPY --from=build /out/healthcheck /usr/local/bin/healthcheck
# 8080: dashboard HTTP and WebSocket; 9090: processor /metrics, /healthz, /readyz.
EXPOSE 8080 9090
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/classpulse"]
CMD ["help"]
