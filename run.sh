#!/usr/bin/env bash
# Main job: install, build the index over corpus/ when it is missing, then serve the web chat on 127.0.0.1:7860.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install.sh
exec .venv/bin/rag serve "$@"
