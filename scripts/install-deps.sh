#!/usr/bin/env bash
# install-deps.sh installs the Debian packages the tests talk to, only those
# missing, so it is fast and safe to run again. Run as root (or with sudo
# on PATH). Usage: scripts/install-deps.sh [package ...] (default: all).
set -euo pipefail

pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  pkgs=(redis-server redis-tools kcat chromium prometheus libopencv-dev opencv-data ffmpeg pkg-config g++ python3-aiosmtpd strace)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# npm: the machine's Node.js often brings its own npm, which conflicts with
# Debian's npm package; install Debian's only when there is no npm at all.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package lists on a fresh machine are empty or stale: update once first.
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
