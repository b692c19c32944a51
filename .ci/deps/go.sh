#!/usr/bin/env bash
# Go modules for the build and tests (the Go toolchain is on the machine).
set -euo pipefail
go version
go mod download
