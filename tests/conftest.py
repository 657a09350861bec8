"""Shared fixtures; the offline switches are set before anything imports transformers or gradio."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
SEED_NAME = "sjz-kjj-2024-proposal-0520-reply.txt"
SEED_PATH = CORPUS / SEED_NAME
SHARED = Path(os.environ.get("RAG_SHARED_DIR", REPO.parent / "shared"))
TIPDM_XLSX = SHARED / "data" / "tipdm2020_gov_messages" / "messages_and_replies.xlsx"
NCP_JSONL = SHARED / "data" / "ncp_policies" / "documents.jsonl"
TIPDM_MAPPING = {"id": "留言编号", "text": "答复意见", "title": "留言主题", "date": "答复时间", "meta": ["留言时间", "留言详情"]}


def need_shared(path: Path) -> Path:
    """Skip (with the reason) when the shared data of the developers' machines is not here."""
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared is only on the developers' and CI machines")
    return path


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def tipdm_xlsx() -> Path:
    return need_shared(TIPDM_XLSX)


@pytest.fixture(scope="session")
def ncp_jsonl() -> Path:
    return need_shared(NCP_JSONL)


@pytest.fixture(scope="session")
def reference_index_dir(tmp_path_factory) -> Path:
    """An index of the project's own corpus/, built once per test session."""
    import rag

    index_dir = tmp_path_factory.mktemp("reference-index")
    rag.build_index(CORPUS, index_dir, progress=False)
    return index_dir


@pytest.fixture(scope="session")
def reference_index(reference_index_dir):
    import rag

    return rag.load_index(reference_index_dir)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-gov-tests"


@pytest.fixture(scope="session")
def tipdm_index():
    """The reference reply plus the tipdm replies, built once into a cache folder keyed by the inputs."""
    import rag
    from rag.search.model import model_id

    xlsx = need_shared(TIPDM_XLSX)
    digest = hashlib.sha256()
    for part in (SEED_PATH.read_bytes(), xlsx.read_bytes(), json.dumps(TIPDM_MAPPING, sort_keys=True).encode(),
                 model_id(None).encode()):
        digest.update(hashlib.sha256(part).digest())
    root = _cache_root() / f"tipdm-{digest.hexdigest()[:16]}"
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(CORPUS / SEED_NAME, corpus / SEED_NAME)
    link = corpus / xlsx.name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(xlsx.resolve())
    (corpus / (xlsx.name + ".rag.json")).write_text(json.dumps(TIPDM_MAPPING, ensure_ascii=False), encoding="utf-8")
    # incremental: a second session finds every document unchanged and embeds nothing
    return rag.build_index(corpus, root / "index", progress=False, follow_symlinks=True)


@pytest.fixture(scope="session")
def scripted_llm():
    """One scripted OpenAI-compatible server process (tests/llm_server.py) for the whole session."""
    from llm_server import ScriptedLLMServer

    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture
def llm(scripted_llm):
    """The scripted server with an empty script and an empty record of requests."""
    scripted_llm.reset()
    return scripted_llm
