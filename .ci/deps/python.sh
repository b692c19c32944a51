#!/usr/bin/env bash
# Python 3 for the stdio example agent (standard library only).
set -euo pipefail
if ! command -v python3 >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq python3
fi
python3 --version
