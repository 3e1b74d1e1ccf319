# syntax=docker/dockerfile:1
# The capture client `classpulse-edge` (cgo + gocv + OpenCV 4.6). It runs on
# student laptops, not in the cluster; this image is for labs and kiosks that
# run it in a container:
#
#   docker build -f deploy/docker/classpulse-edge.Dockerfile -t classpulse-edge:dev .
#   docker run --rm --device /dev/video0 classpulse-edge:dev --brokers kafka:9092 ...
#
# Debian bookworm ships OpenCV 4.6.0, the version gocv v0.31.0 targets
# (DESIGN.md §9). The runtime stage installs exactly the shared libraries the
# binary links, found with ldd in the build stage, plus opencv-data for the
# Haar cascades (/usr/share/opencv4/haarcascades). The CNN and KPCA model
# files are the repository's own (converted at build time, DESIGN.md §7),
# never downloaded at run time.

FROM golang:1.26-bookworm AS build
RUN apt-get update && \
    apt-get install -y --no-install-recommends libopencv-dev pkg-config && \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 GOFLAGS=-trimpath go build -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/classpulse-edge ./cmd/classpulse-edge
# The Debian packages that own the linked libraries (runtime packages only,
# not their -dev counterparts).
RUN ldd /out/classpulse-edge | awk '/=> \//{print $3}' | xargs -r readlink -f | \
        xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u | grep -v -- '-dev$' \
        > /out/runtime-packages.txt && \
    test -s /out/runtime-packages.txt

FROM debian:bookworm-slim
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update && \
    xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends opencv-data ca-certificates && \
    rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /out/classpulse-edge /usr/local/bin/classpulse-edge
# The edge client keeps its consent record and spool in its working folder.
RUN useradd --system --uid 10001 --home-dir /var/lib/classpulse-edge --create-home edge
USER edge
WORKDIR /var/lib/classpulse-edge
ENTRYPOINT ["/usr/local/bin/classpulse-edge"]
