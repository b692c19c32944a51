#!/usr/bin/env bash
# The claude CLI (npm @anthropic-ai/claude-code, pinned in
# agents/claude/cli/package-lock.json) that the claude runtime's tests run
# against a scripted model server. Idempotent: npm ci reinstalls exactly
# what the lockfile records. The package ships a native binary; its
# postinstall script copies it into place, so scripts must run.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node or npm missing: installing them with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends nodejs npm
fi
echo "node $(node --version), npm $(npm --version)"

# Agents run as their own users when the tests run as root: the CLI must be
# readable and executable by others.
umask 022
cd agents/claude/cli
npm ci --no-audit --no-fund
chmod -R a+rX node_modules
./node_modules/.bin/claude --version
