#!/usr/bin/env bash
# Performs the Dockerfile's steps without a Docker engine, in a temporary
# directory: each stage's COPY and RUN (npm ci, npm run build, npm ci --omit=dev),
# then the final CMD as an unprivileged user, probed with the HEALTHCHECK command.
# Exits 0 once the server reports healthy. --keep leaves the directory behind.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx test/docker/docker-steps.ts "$@"
