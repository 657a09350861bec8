"""Reproductions of issue 12 (data loss, security, tracebacks): each failed before the fix and passes after.

Each test names its case (D1 … W3). The fault-injection and property tests that go beyond the list are in
test_fault_injection.py and test_properties.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rag
from rag.cli import main
from rag.search.index import GENERATION_RE, MAX_QUESTION_INPUT
from rag.types import IndexLoadError, RagError

from conftest import REPO

Q = "2023年新增多少家高新技术企业？"
DOCS = {
    "water.txt": "关于自来水管网改造的答复\n市水务局\n市水务局已完成老旧小区供水管网改造工程，共改造管网126公里，"
                 "惠及居民3.2万户。\n市水务局\n2024年3月15日\n",
    "roads.txt": "关于农村公路养护的答复\n市交通运输局\n2023年共投入农村公路养护资金8600万元，完成路面修补412处。\n"
                 "市交通运输局\n2023年6月1日\n",
}
HOSTILE = ("关于终端安全的答复\n市网信办\n2023年处置网络安全事件1234起\x1b]0;pwned\x07，"
           "新增网络安全企业56家\x1b[2J。\x9b31m提示\u202e文本\n市网信办\n2024年1月5日\n")


def write_corpus(root: Path, docs: dict[str, str] = DOCS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny_index_dir(tmp_path_factory) -> Path:
    """A two-document index built once; tests that damage it work on a copy."""
    root = tmp_path_factory.mktemp("tiny")
    rag.build_index(write_corpus(root / "corpus"), root / "index", progress=False)
    return root / "index"


@pytest.fixture()
def index_copy(tiny_index_dir, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_index_dir, tmp_path / "index"))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder with its bytes: an index a read must leave exactly as it was."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def generation_of(index_dir: Path) -> Path:
    return index_dir / "generations" / (index_dir / "CURRENT").read_text().strip()


# ---------------------------------------------------------------- data loss

@pytest.mark.parametrize("damage", ["unknown name", "missing generation", "deleted CURRENT"])
def test_d1_a_read_never_builds_over_or_deletes_an_index_it_cannot_read(index_copy, tmp_path, capsys, damage):
    other = write_corpus(tmp_path / "other", {"x.txt": "关于其他事项的答复\n内容。\n"})
    pointer = index_copy / "CURRENT"
    if damage == "unknown name":
        pointer.write_text("nope\n")
    elif damage == "missing generation":
        pointer.write_text("20200101-000000-1-0123abcd\n")
    else:
        pointer.unlink()
    before = snapshot(index_copy)
    assert main(["docs", "--index", str(index_copy), "--corpus", str(other)]) == 2
    err = capsys.readouterr().err
    assert "CURRENT" in err and "rag build CORPUS --rebuild --index" in err
    assert snapshot(index_copy) == before  # nothing built, nothing deleted
    with pytest.raises(IndexLoadError, match="CURRENT"):
        rag.default_index(index_copy, other)
    assert snapshot(index_copy) == before


def test_d1_an_explicit_build_repairs_the_damaged_index(index_copy, tmp_path):
    (index_copy / "CURRENT").write_text("nope\n")
    index = rag.build_index(write_corpus(tmp_path / "corpus"), index_copy, progress=False)
    assert {d.doc_id for d in index.documents()} == set(DOCS)


def test_d2_a_build_removes_only_generations_it_wrote(index_copy, tmp_path):
    photos = index_copy / "generations" / "my_photos"
    photos.mkdir()
    (photos / "f.txt").write_text("x")
    notes = index_copy / "notes.txt"
    notes.write_text("mine")
    old = generation_of(index_copy)
    corpus = write_corpus(tmp_path / "corpus", {**DOCS, "new.txt": "关于新增事项的答复\n新增内容。\n"})
    rag.build_index(corpus, index_copy, progress=False)
    assert (photos / "f.txt").read_text() == "x" and notes.read_text() == "mine"
    assert not old.exists()  # the build's own earlier generation is replaced
    assert GENERATION_RE.fullmatch(generation_of(index_copy).name)


def test_d3_leftovers_of_a_crashed_build_are_cleaned_by_the_next_one(index_copy, tmp_path):
    stale_pointer = index_copy / "CURRENT.tmp-4242"
    stale_pointer.write_text("20200101-000000-1-0123abcd\n")
    staging = index_copy / "generations" / ".tmp-20200101-000000-4242-0123abcd"
    staging.mkdir()
    (staging / "vectors.faiss").write_bytes(b"half")
    foreign = index_copy / "generations" / ".tmp-mine"
    foreign.mkdir()
    rag.build_index(write_corpus(tmp_path / "corpus"), index_copy, progress=False)
    assert not stale_pointer.exists() and not staging.exists()
    assert foreign.exists()  # a name the build never gives is not its own


# ---------------------------------------------------------------- security

def test_s1_cli_build_lists_links_out_of_the_corpus_and_follows_them_only_when_asked(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    secret = tmp_path / "outside" / "passwd.txt"
    secret.parent.mkdir()
    secret.write_text("关于秘密的答复\nroot:x:0:0:root:/root:/bin/bash\n")
    (corpus / "passwd.txt").symlink_to(secret)
    assert main(["build", str(corpus), "--index", str(tmp_path / "i1"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "passwd.txt: symbolic link to" in out and "outside the corpus folder" in out
    assert "passwd.txt" not in {d.doc_id for d in rag.load_index(tmp_path / "i1").documents()}
    assert main(["build", str(corpus), "--index", str(tmp_path / "i2"), "-q", "--follow-symlinks"]) == 0
    assert "passwd.txt" in {d.doc_id for d in rag.load_index(tmp_path / "i2").documents()}


def test_s1_a_mapping_sidecar_linked_from_outside_is_not_read(tmp_path):
    from rag.ingest.documents import load_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "t.csv").write_text("编号,答复意见\n1,已维修路灯58盏。\n", encoding="utf-8")
    outside = tmp_path / "elsewhere.json"
    outside.write_text('{"id": "编号", "text": "答复意见"}', encoding="utf-8")
    (corpus / "t.csv.rag.json").symlink_to(outside)
    result = load_corpus(corpus)
    assert not result.documents
    assert "link to a file outside its folder" in {s.path: s.reason for s in result.skipped}["t.csv"]


def test_s2_a_question_beyond_the_input_cap_is_refused(tiny_index_dir):
    index = rag.load_index(tiny_index_dir)
    with pytest.raises(RagError, match="limit is 20,000"):
        index.answer("供水管网" * (MAX_QUESTION_INPUT // 4 + 1))
    assert index.answer("改造了多少公里供水管网" + "。" * 4000).found  # a long paste within the cap still answers


@pytest.fixture(scope="module")
def hostile_index_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    corpus = write_corpus(root / "corpus", {"term\x1b[31mred.txt": HOSTILE})
    rag.build_index(corpus, root / "index", progress=False)
    return root / "index"


@pytest.mark.parametrize("command", [["search", "网络安全事件"], ["ask", "2023年处置了多少起网络安全事件？"],
                                     ["docs"], ["search", "网络安全事件", "--json"], ["docs", "--json"]])
def test_s3_control_characters_in_documents_are_never_printed_raw(hostile_index_dir, capsys, command):
    assert main([*command, "--index", str(hostile_index_dir)]) == 0
    out = capsys.readouterr().out
    assert not any(ch in out for ch in "\x1b\x07\x9b\u202e")
    assert "\\x1b" in out or "\\u001b" in out  # shown, not dropped silently


def test_s4_an_unknown_document_id_is_cut_in_the_message(tiny_index_dir):
    index = rag.load_index(tiny_index_dir)
    with pytest.raises(RagError) as info:
        index.document("<b>" + "x" * 10_000 + "\x1b[2J")
    assert len(str(info.value)) < 200 and "\x1b" not in str(info.value)
    for bad in (None, 5, ["water.txt"], {"a": 1}):
        with pytest.raises(RagError, match="document id is text"):
            index.document(bad)


# ---------------------------------------------------------------- tracebacks instead of a clear error

def test_t1_binary_bytes_in_current(index_copy):
    (index_copy / "CURRENT").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(IndexLoadError, match="CURRENT is corrupted"):
        rag.load_index(index_copy)


@pytest.mark.parametrize("manifest", ["[1, 2]", '"text"', "null", "drop dim", "dim as text", "files as list"])
def test_t2_a_manifest_of_the_wrong_shape(index_copy, manifest):
    import json

    path = generation_of(index_copy) / "manifest.json"
    data = json.loads(path.read_text())
    if manifest == "drop dim":
        del data["dim"]
    elif manifest == "dim as text":
        data["dim"] = "384"
    elif manifest == "files as list":
        data["files"] = list(data["files"])
    else:
        data = json.loads(manifest)
    path.write_text(json.dumps(data))
    with pytest.raises(IndexLoadError, match="manifest.json is corrupted"):
        rag.load_index(index_copy)


@pytest.mark.parametrize("how", ["index folder is a file", "lock is a folder", "read-only folder"])
def test_t3_an_index_folder_that_cannot_be_written(tmp_path, how):
    corpus = write_corpus(tmp_path / "corpus")
    target = tmp_path / "index"
    if how == "index folder is a file":
        target.write_text("not a folder")
    elif how == "lock is a folder":
        (target / ".build.lock").mkdir(parents=True)
    elif os.geteuid() == 0:  # permissions do not bind root; sysfs refuses even root a new file
        target = Path("/sys/kernel")
        if not target.is_dir():
            pytest.skip("no /sys/kernel on this machine to stand for a folder root cannot write")
    else:
        target.mkdir()
        target.chmod(0o500)
    try:
        with pytest.raises(RagError, match="cannot write to the index folder"):
            rag.build_index(corpus, target, progress=False)
    finally:
        if target.is_dir() and target.is_relative_to(tmp_path):
            target.chmod(0o755)


def test_t4_a_damaged_model_cache_is_rebuilt(tmp_path):
    from rag.search.model import build_default_model, default_model_dir, is_complete, load_sentence_transformer

    built = build_default_model()
    dest = tmp_path / "model"
    shutil.copytree(built, dest)
    assert is_complete(dest)
    weights = dest / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    assert not is_complete(dest)
    assert build_default_model(dest) == dest and is_complete(dest)
    assert load_sentence_transformer(str(dest)).encode(["query: 供水"]).shape == (1, 384)
    assert default_model_dir().exists()


def test_t4_an_unusable_cache_folder(monkeypatch, tmp_path):
    from rag.search.model import build_default_model

    monkeypatch.setenv("RAG_CACHE_DIR", "/dev/null/x")
    with pytest.raises(RagError, match="set RAG_CACHE_DIR to a writable folder"):
        build_default_model()


def test_t5_a_lone_surrogate_in_a_question_or_a_document(tiny_index_dir, tmp_path):
    index = rag.load_index(tiny_index_dir)
    answer = index.answer("改造了多少公里\ud800供水管网？")
    assert answer.found and "126公里" in answer.text
    assert index.search("\udfff", k=1) is not None
    table = tmp_path / "rows.jsonl"
    table.write_text('{"id": "r\\ud800", "text": "关于路灯的答复\\n已维修路灯58盏\\udc00。"}\n', encoding="utf-8")
    built = rag.build_index(table, tmp_path / "idx", progress=False)
    [doc] = built.documents()
    assert "\ufffd" in doc.doc_id and "\ufffd" in doc.text and len(doc.text) == len("关于路灯的答复\n已维修路灯58盏\ud800。")


@pytest.mark.parametrize("kwargs", [{"k": 2.7}, {"k": "abc"}, {"k": None}, {"k": True}, {"filters": ["year"]},
                                    {"filters": {None: "2024"}}, {"filters": {"year": 2.5}},
                                    {"filters": {"issuer": {"a": 1}}}, {"filters": "year=2024"}, {"mode": 5},
                                    {"mode": None}])
def test_t6_wrong_argument_types_are_rag_errors(tiny_index_dir, kwargs):
    index = rag.load_index(tiny_index_dir)
    for call in (index.search, index.answer):
        with pytest.raises(RagError):
            call(Q, **kwargs)


def test_t6_a_question_that_is_not_text(tiny_index_dir):
    index = rag.load_index(tiny_index_dir)
    for bad in (None, 5, b"bytes", ["q"]):
        with pytest.raises(RagError, match="must be text"):
            index.answer(bad)


# ---------------------------------------------------------------- wrong results without a word

@pytest.mark.parametrize("form", ["2024-01-01", "20240101", "2024年1月1日", "2024/1/1", "2024.01.01", "2024-01",
                                  "2024年1月", "2024"])
def test_w1_date_filters_in_common_forms(tiny_index_dir, form):
    index = rag.load_index(tiny_index_dir)
    docs = {h.doc_id for h in index.search("答复", k=5, filters={"date_from": form})}
    assert docs == {"water.txt"}  # dated 2024-03-15; roads.txt is 2023-06-01
    assert {h.doc_id for h in index.search("答复", k=5, filters={"date_to": "2023年6月"})} == {"roads.txt"}
    assert {h.doc_id for h in index.search("答复", k=5, filters={"year": "2023年"})} == {"roads.txt"}


@pytest.mark.parametrize("filters", [{"year": "abc"}, {"year": "24"}, {"date_from": "soon"},
                                     {"date_to": "2024-13-01"}, {"date_from": ["2024", "2025"]}])
def test_w1_other_forms_are_refused_with_the_expected_form(tiny_index_dir, filters, capsys):
    index = rag.load_index(tiny_index_dir)
    with pytest.raises(RagError, match="such as 2024"):
        index.search("答复", filters=filters)
    key, value = next(iter(filters.items()))
    if isinstance(value, str):
        assert main(["search", "答复", "--index", str(tiny_index_dir), "--filter", f"{key}={value}"]) == 2
        assert "such as 2024" in capsys.readouterr().err


def test_w2_utf16_without_a_bom_is_read(tmp_path):
    from rag.ingest.documents import load_corpus

    text = DOCS["water.txt"]
    (tmp_path / "le.txt").write_bytes(text.encode("utf-16-le"))
    (tmp_path / "be.txt").write_bytes(text.encode("utf-16-be"))
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary" * 50)
    result = load_corpus(tmp_path)
    assert {d.doc_id: d.text for d in result.documents} == {"be.txt": text, "le.txt": text}
    assert "if it is UTF-16 text, save it as UTF-8" in {s.path: s.reason for s in result.skipped}["blob.txt"]


def test_w3_quiet_build_and_queries_print_nothing_but_results(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rag", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=600)

    build = run("build", str(corpus), "--index", str(tmp_path / "index"), "-q")
    assert build.returncode == 0 and build.stderr == "", build.stderr
    assert build.stdout.startswith("indexed 2 documents")
    search = run("search", "供水管网", "--index", str(tmp_path / "index"), "-k", "1")
    assert search.returncode == 0 and search.stderr == "", search.stderr


def test_output_piped_into_a_reader_that_stops_early_is_no_traceback(tiny_index_dir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "rag", "search", "答复", "--index", str(tiny_index_dir), "-k", "5"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head -0`: nobody reads the output
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 141 and "Traceback" not in stderr, stderr
