"""Opt-in: written answers from a real small model (llama.cpp's server over Qwen2.5-Coder-1.5B-Instruct, see
scripts/local_llm.py). Runs when RAG_TEST_LLM_GGUF names the GGUF and xllamacpp is installed
(bash scripts/install_local_llm.sh); skipped with the reason otherwise."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.generation import LLMConfig

REPO = Path(__file__).resolve().parents[1]
GGUF = os.environ.get("RAG_TEST_LLM_GGUF", "")

pytestmark = pytest.mark.skipif(
    not GGUF or not Path(GGUF).is_file() or importlib.util.find_spec("xllamacpp") is None,
    reason="opt-in: set RAG_TEST_LLM_GGUF to a GGUF file and install xllamacpp (bash scripts/install_local_llm.sh)")


@pytest.fixture(scope="module")
def real_llm():
    process = subprocess.Popen([sys.executable, str(REPO / "scripts" / "local_llm.py"), "serve", "--model", GGUF],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("LISTENING "), f"the model server did not start: {line!r}"
        yield LLMConfig(base_url=line.split()[1], timeout=180, max_prompt_chars=3000)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_real_model_answers_and_its_figures_are_checked(reference_index, real_llm):
    answer = reference_index.answer("2023年新增了多少家高新技术企业？", k=3, generate=True, llm=real_llm)
    assert answer.generated, answer.note
    assert answer.statements and all(s.claims or s.problems or s.support for s in answer.statements)
    if answer.verified:
        assert "360" in answer.text
    else:
        assert answer.unsupported and answer.extractive is not None


def test_a_real_model_in_english(reference_index, real_llm):
    answer = reference_index.answer("How many high-tech enterprises were added in 2023?", k=3, generate=True,
                                    llm=real_llm)
    assert answer.generated or answer.note
    if answer.generated and answer.verified:
        assert "360" in answer.text
