#!/usr/bin/env bash
# The stock nats CLI (natscli), pinned, for the interoperability test
# (observers_test.go TestNatsCLIReadsLiveRun). Built from the Go module
# proxy into $(go env GOPATH)/bin, where the test looks for it besides
# PATH. Idempotent: skipped when that version is already installed.
set -euo pipefail
version=v0.5.0
bin="$(go env GOPATH)/bin/nats"
if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$version" ]; then
  echo "nats CLI $version already installed at $bin"
  exit 0
fi
GOFLAGS= go install "github.com/nats-io/natscli/nats@$version"
echo "nats CLI $("$bin" --version) at $bin"
