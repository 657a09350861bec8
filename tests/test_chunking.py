"""Chunking: exact offsets, sizes, heading paths, nothing cut inside figures, on real and worst-case text."""
from __future__ import annotations

import json
import re

import pytest

from rag.ingest.chunking import CHUNK_CONFIG, chunk_document, content_ranges, embedding_text, protected_spans
from rag.ingest.metadata import parse_reply
from rag.types import Chunk, Document

MIN, MAX = CHUNK_CONFIG["min_chars"], CHUNK_CONFIG["max_chars"]
SEED_FIGURES = [
    "168.37亿元", "19.83%", "33.64亿元", "2.52%", "0.28个", "2023年10月24日", "2024-08-02", "2024年6月6日",
    "石传〔2022〕18号", "石科创领办函〔2022〕1号", "0311-85057592", "197.4344万元", "18753家", "360家", "1000万元",
]
HEADING_LINE = re.compile(r"^(?:[一二三四五六七八九十]+、|[(（][一二三四五六七八九十]+[)）])")


def seed_doc(seed_text: str) -> Document:
    title, meta, spans = parse_reply(seed_text)
    return Document("seed.txt", seed_text, title=title, meta=meta, content_spans=spans)


def size(text: str) -> int:
    """The chunker's measure: a run of whitespace counts as one character."""
    return len(re.sub(r"\s{2,}", " ", text))


def check_chunks(doc: Document, chunks: list[Chunk], min_chars: int = MIN, max_chars: int = MAX) -> None:
    """Invariants every chunking must satisfy."""
    ranges = content_ranges(doc)
    assert [c.chunk_id for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert c.doc_id == doc.doc_id
        assert any(s <= c.start and c.end <= e for s, e in ranges), "chunk leaves the content"
        assert size(c.text) <= max_chars
    for c in chunks[:-1]:
        assert size(c.text) >= min_chars, c.text
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    # nothing of the content is lost
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.start : c.end] = b"\1" * (c.end - c.start)
    for s, e in ranges:
        lost = [i for i in range(s, e) if not covered[i] and not doc.text[i].isspace()]
        assert not lost, doc.text[lost[0] : lost[0] + 30]


def boundaries_inside(text: str, chunks: list[Chunk], figures: list[str]) -> list[str]:
    """Figures (every occurrence) that a chunk boundary cuts."""
    cut = []
    for fig in figures:
        for m in re.finditer(re.escape(fig), text):
            if any(m.start() < p < m.end() for c in chunks for p in (c.start, c.end)):
                cut.append(fig)
    return cut


def chunk_with(chunks: list[Chunk], needle: str) -> Chunk:
    return next(c for c in chunks if needle in c.text)


# ---------------------------------------------------------------- the reference document


def test_seed_chunks_are_exact_sized_and_complete(seed_text):
    doc = seed_doc(seed_text)
    chunks = chunk_document(doc)
    check_chunks(doc, chunks)
    assert 15 <= len(chunks) <= 40
    assert 150 <= sorted(len(c.text) for c in chunks)[len(chunks) // 2] <= 400


def test_seed_chunks_leave_page_chrome_out(seed_text):
    chunks = chunk_document(seed_doc(seed_text))
    for chrome in ("【字体", "打印", "政策解读"):
        assert not any(chrome in c.text for c in chunks), chrome
    for field_line in ("是否同意公开:(是)", "办理结果:(A)"):  # header facts stay searchable
        assert any(field_line in c.text for c in chunks), field_line
    assert any("0311-85057592" in c.text for c in chunks)  # the contact footer is content


def test_seed_sections_follow_the_heading_path(seed_text):
    chunks = chunk_document(seed_doc(seed_text))
    section = chunk_with(chunks, "全年新增高新技术企业360家").section
    assert "二、大力推动电子信息产业发展" in section and "(一)创新主体规模不断壮大" in section
    section = chunk_with(chunks, "立项90个").section
    assert section.startswith("一、增强创新意识,加大对原创科技投入 > (二)加强基础研究工作")
    section = chunk_with(chunks, "石传〔2022〕18号").section
    assert section.split(" > ")[-1] == "二是各类创新政策密集出台。"
    section = chunk_with(chunks, "飞轮储能").section
    assert section == "三、人才培养 > (四)创新院士智力引进的举措。"
    section = chunk_with(chunks, "打造科技创新策源地").section
    assert section == "四、谋划未来产业发展 > 二是加快布局高能级创新平台,打造科技创新策源地。"


def test_seed_headings_open_chunks(seed_text):
    doc = seed_doc(seed_text)
    chunks = chunk_document(doc)
    offset = 0
    headings = 0
    for line in seed_text.split("\n"):
        if HEADING_LINE.match(line) and len(line) < 40:
            headings += 1
            holder = next(c for c in chunks if c.start <= offset < c.end)
            before = seed_text[holder.start : offset].split("\n")[:-1]
            assert all(HEADING_LINE.match(b) for b in before), f"{line!r} glued after body text"
            assert holder.end > offset + len(line), f"{line!r} ends its chunk"
        offset += len(line) + 1
    assert headings == 14  # 4 level-1 and 10 level-2 headings


@pytest.mark.parametrize("target,max_chars,min_chars,overlap", [(300, 400, 60, 40), (80, 100, 30, 20), (40, 50, 20, 10)])
def test_seed_figures_are_never_cut(seed_text, target, max_chars, min_chars, overlap):
    doc = seed_doc(seed_text)
    chunks = chunk_document(doc, target_chars=target, max_chars=max_chars, min_chars=min_chars, overlap=overlap)
    check_chunks(doc, chunks, min_chars, max_chars)
    assert boundaries_inside(seed_text, chunks, SEED_FIGURES) == []
    assert len(chunks) > len(chunk_document(doc)) or max_chars == 400


def test_seed_embedding_text_has_title_and_section_once(seed_text):
    doc = seed_doc(seed_text)
    chunks = chunk_document(doc)
    inner = chunk_with(chunks, "全年新增高新技术企业360家")
    text = embedding_text(inner, doc.title)
    assert text.split("\n")[0] == doc.title
    assert text.count("(一)创新主体规模不断壮大") == 1
    assert "二、大力推动电子信息产业发展" in text and text.endswith(inner.text)
    opening = chunk_with(chunks, "市科技局高度重视推动新一代电子信息产业")
    assert opening.text.startswith("二、大力推动电子信息产业发展")
    assert embedding_text(opening, doc.title) == doc.title + "\n" + opening.text
    assert embedding_text(opening, "") == opening.text


# ---------------------------------------------------------------- synthetic worst cases


def test_text_without_any_separator_is_cut_outside_figures():
    unit = "编号石传〔2022〕18号于2023年10月24日发布资金1,000.5万元占19.83%电话0311-85057592日期2024-08-02R&D经费"
    doc = Document("w.txt", unit * 25)
    chunks = chunk_document(doc)
    check_chunks(doc, chunks)
    figures = ["石传〔2022〕18号", "2023年10月24日", "1,000.5万元", "19.83%", "0311-85057592", "2024-08-02", "R&D"]
    assert boundaries_inside(doc.text, chunks, figures) == []
    assert len(chunks) >= 6


def test_digit_commas_are_not_clause_commas():
    clause = "本年度资金共计1,234,567元用于项目建设,其中设备购置{}万元"
    text = ",".join(clause.format(i) for i in range(40)) + "。"
    doc = Document("c.txt", text)
    chunks = chunk_document(doc)
    check_chunks(doc, chunks)
    assert boundaries_inside(text, chunks, ["1,234,567元"]) == []
    for c in chunks[:-1]:
        end = doc.text[c.end - 1]
        assert end in ",。" and not doc.text[c.end].isdigit(), c.text[-15:]


def test_protected_spans_cover_numbers_dates_and_document_numbers():
    text = "根据石传〔2022〕18号,于2023年10月24日拨付168.37亿元(19.83%),电话0311-85057592,日期2024-08-02。"
    spans = {text[s:e] for s, e in protected_spans(text)}
    assert {"168.37亿元", "19.83%", "2023年10月24日", "0311-85057592", "2024-08-02"} <= spans
    assert any(s.endswith("〔2022〕18号") for s in spans)


def test_sections_with_full_and_half_width_parentheses_and_items():
    text = (
        "关于做好2024年工作的通知\n"
        "一、总体要求\n"
        "（一）工作目标。\n"
        + "坚持稳中求进工作总基调,完整准确全面贯彻新发展理念。" * 3 + "\n"
        "(二)基本原则。\n"
        "一是坚持问题导向。" + "聚焦群众急难愁盼问题,逐项研究解决办法。" * 2 + "二是坚持系统观念。"
        + "统筹发展和安全,守住底线。" * 12 + "\n"
        + "加强组织领导,压实各方责任。" * 8 + "\n"
        "二、重点任务\n"
        "1.加强科技创新\n" + "支持企业加大研发投入,培育科技型中小企业。" * 4 + "\n"
        "2、优化营商环境\n" + "深化放管服改革,持续提升政务服务水平。" * 4 + "\n"
    )
    doc = Document("s.txt", text)
    chunks = chunk_document(doc, target_chars=80, max_chars=120, min_chars=20, overlap=0)
    check_chunks(doc, chunks, 20, 120)
    assert chunk_with(chunks, "完整准确").section == "一、总体要求 > （一）工作目标。"
    assert chunk_with(chunks, "聚焦群众").section == "一、总体要求 > (二)基本原则。 > 一是坚持问题导向。"
    second = text.index("二是坚持系统观念")
    later = [c for c in chunks if second <= c.start < text.index("二、重点任务")]
    later = [c for c in later if c.start < text.index("加强组织领导")]
    assert later and all(c.section == "一、总体要求 > (二)基本原则。 > 二是坚持系统观念。" for c in later)
    # a plain paragraph after the item list is under the heading, not under the last item
    assert chunk_with(chunks, "压实各方责任").section == "一、总体要求 > (二)基本原则。"
    assert chunk_with(chunks, "支持企业加大").section == "二、重点任务 > 1.加强科技创新"
    assert chunk_with(chunks, "深化放管服").section == "二、重点任务 > 2、优化营商环境"
    assert chunk_with(chunks, "关于做好").section == "一、总体要求 > （一）工作目标。"  # its headings open it
    assert not any(HEADING_LINE.match(c.text.split("\n")[-1]) for c in chunks)


def test_short_lines_merge_and_heading_is_not_left_at_a_chunk_end():
    lines = [f"第{i}项内容简短" for i in range(30)]
    body = "\n".join(lines[:15]) + "\n二、第二部分\n" + "\n".join(lines[15:])
    doc = Document("l.txt", body)
    chunks = chunk_document(doc, target_chars=100, max_chars=150, min_chars=40, overlap=0)
    check_chunks(doc, chunks, 40, 150)
    assert any(c.text.startswith("二、第二部分") for c in chunks)
    assert not any(c.text.endswith("二、第二部分") for c in chunks)


def test_split_paragraph_chunks_overlap_from_a_clause_boundary():
    text = "".join(f"第{i}条措施要求各地加快推进项目建设,确保按期完成任务。" for i in range(40))
    doc = Document("o.txt", text)
    chunks = chunk_document(doc, overlap=40)
    check_chunks(doc, chunks)
    pairs = list(zip(chunks, chunks[1:]))
    assert pairs and all(b.start < a.end for a, b in pairs)
    for a, b in pairs:
        assert size(text[b.start : a.end]) <= 40
        assert text[b.start - 1] in "。,"
    plain = chunk_document(doc, overlap=0)
    assert all(b.start >= a.end for a, b in zip(plain, plain[1:]))


def test_tiny_and_blank_documents():
    doc = Document("t.txt", "  只有一行的答复。\n")
    chunks = chunk_document(doc)
    assert [(c.text, c.start, c.end) for c in chunks] == [("只有一行的答复。", 2, 10)]
    assert chunk_document(Document("b.txt", " \n\t\u3000\xa0 \n")) == []
    assert chunk_document(Document("e.txt", "")) == []


def test_content_spans_limit_the_chunks_and_empty_spans_mean_everything():
    body = "本单位认真办理了该项建议,现将有关情况答复如下。" * 4
    text = "打印 关闭 分享\n" + body + "\n上一篇 下一篇"
    start = text.index(body)
    with_spans = chunk_document(Document("p.txt", text, content_spans=[(start, start + len(body))]))
    assert "".join(c.text for c in with_spans) == body
    whole = chunk_document(Document("p.txt", text))
    assert whole[0].text.startswith("打印") and whole[-1].text.endswith("下一篇")


def test_page_numbers_come_from_page_starts():
    pages = ["第一页的正文内容,用于测试页码。" * 8, "第二页的正文内容,用于测试页码。" * 8, "第三页。" * 30]
    text = "\n".join(pages)
    starts = [0, len(pages[0]) + 1, len(pages[0]) + len(pages[1]) + 2]
    chunks = chunk_document(Document("p.pdf", text, page_starts=starts), target_chars=100, max_chars=140, min_chars=30)
    for c in chunks:
        expected = 1 + sum(c.start >= s for s in starts[1:])
        assert c.meta["page"] == expected
    assert {c.meta["page"] for c in chunks} == {1, 2, 3}
    assert "page" not in chunk_document(Document("p.txt", text))[0].meta


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError):
        chunk_document(Document("x", "正文"), target_chars=50, max_chars=40)


# ---------------------------------------------------------------- single-line ncp policies


@pytest.mark.shared
def test_ncp_single_line_documents(ncp_jsonl):
    rows = [json.loads(line) for line in ncp_jsonl.read_text(encoding="utf-8").splitlines()]
    assert len(rows) > 500
    for row in rows:
        doc = Document(row["docid"], row["text"])
        chunks = chunk_document(doc)
        check_chunks(doc, chunks)
    first = Document(rows[0]["docid"], rows[0]["text"])
    chunks = chunk_document(first)
    assert chunk_with(chunks, "对非营利性医疗机构提供的医疗服务免征增值税").section == "二、支持疾控医疗救治"
    for heading in ("一、支持疫情防控物资供应", "二、支持疾控医疗救治", "三、鼓励公益慈善捐赠"):
        assert any(c.text.startswith(heading) for c in chunks), heading
