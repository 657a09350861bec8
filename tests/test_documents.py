"""Corpus walking, decoding, skipping bad files, and the Documents built from free text."""
from __future__ import annotations

import logging
import os
import shutil

import pytest
from conftest import CORPUS, SEED_NAME, SEED_PATH

from rag.ingest.documents import MAX_BYTES, content_hash, decode_bytes, load_corpus
from rag.types import Document, RagError

REPLY = "关于加快科技创新的答复\n张三委员：\n您的提案收悉，现答复如下：新增高新技术企业360家。\n某某市科学技术局\n2024年6月6日\n"


def _write(path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def _skipped(result) -> dict[str, str]:
    return {s.path: s.reason for s in result.skipped}


def test_seed_corpus_loads_exactly(seed_text):
    result = load_corpus(CORPUS)
    assert result.skipped == []
    [doc] = result.documents
    assert isinstance(doc, Document)
    assert doc.doc_id == SEED_NAME
    assert doc.text == seed_text == SEED_PATH.read_bytes().decode("utf-8")
    assert doc.title == "对政协石家庄市第十四届委员会第四次会议第0520号提案的答复"
    assert doc.meta["proposal_number"] == "0520" and doc.meta["publish_date"] == "2024-08-02"
    assert doc.content_spans and all(0 <= s < e <= len(doc.text) for s, e in doc.content_spans)
    assert doc.content_hash == content_hash(doc.text, doc.title, doc.meta)
    assert Document.from_dict(doc.to_dict()) == doc


def test_content_hash_changes_with_text_title_and_meta():
    base = content_hash("正文", "标题", {"a": 1, "b": 2})
    assert base == content_hash("正文", "标题", {"b": 2, "a": 1})  # key order does not matter
    assert len({base, content_hash("正文。", "标题", {"a": 1, "b": 2}), content_hash("正文", "标题2", {"a": 1, "b": 2}),
                content_hash("正文", "标题", {"a": 1, "b": 3}), content_hash("正文标", "题", {"a": 1, "b": 2})}) == 5


def test_walk_is_recursive_sorted_posix_and_skips_hidden_and_sidecars(tmp_path):
    _write(tmp_path / "b.txt", "乙文件内容。")
    _write(tmp_path / "a" / "z.md", "# 标题\n甲文件内容。")
    _write(tmp_path / "a" / "c.txt", "丙文件内容。")
    _write(tmp_path / ".hidden.txt", "隐藏文件。")
    _write(tmp_path / ".git" / "x.txt", "隐藏目录。")
    _write(tmp_path / "b.txt.rag.json", '{"text": "x"}')
    _write(tmp_path / "~$lock.docx", b"owner")  # an Office lock file
    result = load_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["a/c.txt", "a/z.md", "b.txt"]
    assert result.skipped == []
    assert result.documents[1].title == "标题"  # the Markdown heading mark is not part of the title
    assert [d.doc_id for d in load_corpus(tmp_path).documents] == ["a/c.txt", "a/z.md", "b.txt"]


def test_utf8_bom_is_removed_and_text_kept_exactly(tmp_path):
    text = "关于X的答复\r\n第一段，含全角：标点。\r\n\r\n  第二段  \r\n"
    _write(tmp_path / "bom.txt", b"\xef\xbb\xbf" + text.encode("utf-8"))
    [doc] = load_corpus(tmp_path).documents
    assert doc.text == text


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_gbk_and_gb18030_files_decode(tmp_path, encoding):
    _write(tmp_path / "gbk.txt", REPLY.encode(encoding))
    [doc] = load_corpus(tmp_path).documents
    assert doc.text == REPLY
    assert doc.title == "关于加快科技创新的答复"
    assert doc.meta["sign_date"] == "2024-06-06" and doc.meta["addressee"] == "张三委员"


def test_other_single_byte_text_is_decoded_by_a_confident_guess(tmp_path):
    text = "Le café de la gare: résumé naïf, déjà vu à Noël. Les élèves étudient près de la fenêtre.\n" * 3
    _write(tmp_path / "latin.txt", text.encode("cp1252"))
    result = load_corpus(tmp_path)
    assert result.skipped == []
    assert "Les " in result.documents[0].text and "de la gare" in result.documents[0].text


def test_bad_files_are_skipped_with_reasons_and_warnings(tmp_path, caplog):
    _write(tmp_path / "good.txt", REPLY)
    _write(tmp_path / "binary.txt", b"PK\x03\x04\x00\x00binary\x00data")
    _write(tmp_path / "empty.txt", b"")
    _write(tmp_path / "blank.md", " \n\u3000\n")
    _write(tmp_path / "garbage.txt", bytes(range(0x80, 0x100)) * 4)
    _write(tmp_path / "notes.doc", b"legacy")
    with caplog.at_level(logging.WARNING, logger="rag.ingest.documents"):
        result = load_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    reasons = _skipped(result)
    assert "binary" in reasons["binary.txt"]
    assert "empty" in reasons["empty.txt"] and "empty" in reasons["blank.md"]
    assert "undecodable" in reasons["garbage.txt"]
    assert "unsupported" in reasons["notes.doc"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    for name in ("binary.txt", "empty.txt", "blank.md", "garbage.txt"):
        assert name in warned


def test_oversized_file_is_skipped(tmp_path):
    _write(tmp_path / "big.txt", "大" * 2000)
    _write(tmp_path / "small.txt", "小文件。")
    result = load_corpus(tmp_path, max_bytes=1000)
    assert [d.doc_id for d in result.documents] == ["small.txt"]
    assert "too large" in _skipped(result)["big.txt"]
    assert MAX_BYTES == 50 * 1024 * 1024


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this platform")
def test_links_out_of_the_corpus_are_listed_not_followed_unless_asked(tmp_path):
    outside = tmp_path / "outside"
    _write(outside / "real.txt", REPLY)
    _write(outside / "etc" / "passwd.txt", "root:x:0:0:root:/root:/bin/bash\n")
    corpus = tmp_path / "corpus"
    _write(corpus / "inner" / "own.txt", REPLY)
    (corpus / "link.txt").symlink_to(outside / "real.txt")
    (corpus / "etc").symlink_to(outside / "etc")  # a linked folder outside is not walked
    (corpus / "inside.txt").symlink_to(corpus / "inner" / "own.txt")  # a link inside the corpus is followed
    (corpus / "broken.txt").symlink_to(tmp_path / "nowhere.txt")
    (corpus / "loop").symlink_to(corpus)  # a directory loop must not hang the walk
    result = load_corpus(corpus)
    assert [d.doc_id for d in result.documents] == ["inner/own.txt", "inside.txt"]
    reasons = _skipped(result)
    assert "outside the corpus folder" in reasons["link.txt"] and "--follow-symlinks" in reasons["link.txt"]
    assert "outside the corpus folder" in reasons["etc/"]
    assert "broken symlink" in reasons["broken.txt"]
    followed = load_corpus(corpus, follow_symlinks=True)
    assert [d.doc_id for d in followed.documents] == ["etc/passwd.txt", "inner/own.txt", "inside.txt", "link.txt"]


def test_missing_corpus_is_a_rag_error_naming_it(tmp_path):
    with pytest.raises(RagError, match="not found.*missing"):
        load_corpus(tmp_path / "missing")
    _write(tmp_path / "notes.xyz", "x")
    with pytest.raises(RagError, match=r"unsupported file type '\.xyz'.*\.jsonl"):
        load_corpus(tmp_path / "notes.xyz")
    _write(tmp_path / "t.xlsx.rag.json", '{"text": "x"}')
    with pytest.raises(RagError, match="mapping, not a document"):
        load_corpus(tmp_path / "t.xlsx.rag.json")


def test_single_file_has_the_doc_id_it_has_in_a_folder(tmp_path):
    _write(tmp_path / "replies" / "reply.txt", REPLY)
    [in_folder] = load_corpus(tmp_path / "replies").documents
    [alone] = load_corpus(tmp_path / "replies" / "reply.txt", progress=True).documents
    assert alone.doc_id == in_folder.doc_id == "reply.txt"
    assert alone == in_folder
    _write(tmp_path / "empty.txt", "")
    result = load_corpus(tmp_path / "empty.txt")  # an unreadable file is skipped with its reason, as in a folder
    assert result.documents == [] and "empty" in _skipped(result)["empty.txt"]


def test_seed_copy_in_a_subfolder_keeps_posix_doc_id(tmp_path, seed_text):
    target = tmp_path / "replies" / "2024"
    target.mkdir(parents=True)
    shutil.copy(SEED_PATH, target / SEED_NAME)
    [doc] = load_corpus(tmp_path, progress=True).documents
    assert doc.doc_id == f"replies/2024/{SEED_NAME}"
    assert doc.text == seed_text


@pytest.mark.parametrize("data, text", [
    ("普通文本".encode("utf-8"), "普通文本"),
    (b"\xef\xbb\xbf" + "带BOM".encode("utf-8"), "带BOM"),
    ("简体中文".encode("gbk"), "简体中文"),
    ("UTF-16文本".encode("utf-16"), "UTF-16文本"),
])
def test_decode_bytes(data, text):
    assert decode_bytes(data) == text
