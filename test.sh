#!/usr/bin/env bash
# Whole test suite: install, then pytest (tests that need ../shared or Chromium skip with a reason when absent).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/python -m pytest -q -rs "$@"
