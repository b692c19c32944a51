#!/usr/bin/env bash
# Node.js and the dependencies of the Node.js example agent
# (agents/examples/node), which node_test.go runs. Idempotent: npm ci
# reinstalls exactly what package-lock.json records.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node or npm missing: installing them with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends nodejs npm
fi
echo "node $(node --version), npm $(npm --version)"
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "warning: the Node.js example is tested with Node.js 20 or later, this is $(node --version)" >&2
fi

# Agents run as their own users when the tests run as root: the modules must
# be readable by others.
umask 022
cd agents/examples/node
npm ci --no-audit --no-fund
chmod -R a+rX node_modules
