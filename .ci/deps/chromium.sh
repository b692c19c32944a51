#!/usr/bin/env bash
# Headless Chromium, for the test that renders `terrarium report`'s
# report.html (report/render_test.go). Idempotent.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium missing: installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends chromium
fi
chromium --version
