"""Readers for HTML, DOCX, PDF and tabular files, each file built here with the real libraries."""
from __future__ import annotations

import csv
import datetime as dt
import html
import json
import re

import pytest
from conftest import REPO

from rag.ingest.documents import load_corpus
from rag.ingest.formats import OLE_MAGIC, detect_mapping, extract_html, load_mapping, table_lines
from rag.types import RagError

ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
TIPDM_MAPPING = REPO / "corpora" / "tipdm.rag.json"
NCP_MAPPING = REPO / "corpora" / "ncp.rag.json"


def _skipped(result) -> dict[str, str]:
    return {s.path: s.reason for s in result.skipped}


def _docs(result) -> dict:
    return {d.doc_id: d for d in result.documents}


# ---------------------------------------------------------------- tables as text


def test_table_rows_keep_values_next_to_headers():
    rows = [["指标", "数量"], ["新增高企", "360家"], ["", ""], ["省级平台", "29家"]]
    assert table_lines(rows) == ["指标: 新增高企; 数量: 360家", "指标: 省级平台; 数量: 29家"]
    assert table_lines([["2023", "360"], ["2024", "400"]]) == ["2023; 360", "2024; 400"]  # no header row
    assert table_lines([["多行\n单元格", "值"], ["a", "b"]]) == ["多行 单元格: a; 值: b"]
    assert table_lines([]) == []


# ---------------------------------------------------------------- tabular


def _xlsx(path, rows):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)


XLSX_ROWS = [
    ["编号", "标题", "正文", "日期", "留言"],
    [1, "关于停车难的答复", "  经调查，新增停车位200个。\n  ", dt.datetime(2019, 5, 9, 9, 49), "小区停车难"],
    [2, None, "已安排维修路灯。明日完成。", "2019/5/10 14:56:53", "路灯坏了"],
    [3, "空答复", "   ", "2019/5/11", "无"],
]


def test_xlsx_rows_with_detected_columns(tmp_path):
    _xlsx(tmp_path / "t.xlsx", XLSX_ROWS)
    result = load_corpus(tmp_path)
    docs = _docs(result)
    assert sorted(docs) == ["t.xlsx#1", "t.xlsx#2"]
    one, two = docs["t.xlsx#1"], docs["t.xlsx#2"]
    assert one.text == "经调查，新增停车位200个。"
    assert one.title == "关于停车难的答复" and one.meta["date"] == "2019-05-09"
    assert two.title == "已安排维修路灯" and two.meta["date"] == "2019-05-10"
    assert one.meta["留言"] == "小区停车难" and two.meta["留言"] == "路灯坏了"  # other columns: metadata
    assert set(one.meta) == {"留言", "date"}  # the id, text, title and date columns are not repeated
    assert one.content_spans == [(0, len(one.text))]
    assert "empty text" in _skipped(result)["t.xlsx#3"]


def test_xlsx_sidecar_mapping_wins_over_argument(tmp_path):
    rows = [["ID", "Reply", "Subject", "When", "Message"], [7, "回复内容甲。", "主题甲", "2024年6月6日", "  留言甲  "]]
    _xlsx(tmp_path / "s.xlsx", rows)
    _xlsx(tmp_path / "a.xlsx", rows)
    sidecar = {"id": "ID", "text": "Reply", "title": "Subject", "date": "When", "meta": {"message": "Message"}}
    (tmp_path / "s.xlsx.rag.json").write_text(json.dumps(sidecar), encoding="utf-8")
    argument = {"id": "ID", "text": "Message", "title": None, "date": None, "meta": ["Subject"]}
    docs = _docs(load_corpus(tmp_path, mapping=argument))
    side, arg = docs["s.xlsx#7"], docs["a.xlsx#7"]
    assert (side.text, side.title, side.meta["date"], side.meta["message"]) == ("回复内容甲。", "主题甲", "2024-06-06", "留言甲")
    assert (arg.text, arg.title, arg.meta["Subject"]) == ("留言甲", "留言甲", "主题甲")
    assert "date" not in arg.meta


def test_detected_mapping_keeps_every_other_column_as_metadata():
    tipdm_columns = ["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "答复意见", "答复时间"]
    found = detect_mapping(tipdm_columns)
    assert (found.id, found.text, found.title, found.date) == ("留言编号", "答复意见", "留言主题", "答复时间")
    assert found.meta == {"留言用户": "留言用户", "留言时间": "留言时间", "留言详情": "留言详情"}
    assert detect_mapping(["docid", "text"]).meta == {}
    assert detect_mapping(["id", "content", "", "source"]).meta == {"source": "source"}  # unnamed columns dropped


TIPDM_LIKE = [
    ["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "答复意见", "答复时间"],
    [2549, "A00045581", "A2区物业管理有问题", "2019/4/25 9:32:09", "\n\t\t小区物业扬言要退出。\n\t", "经调查，已召开业主大会。",
     "2019/5/10 14:56:53"],
    [2554, "A00023583", "A3区潇楚南路洋湖段怎么还没修好？", dt.datetime(2019, 4, 24, 16, 3, 40), "道路一直没修。",
     "潇楚南路预计2019年底完工。", dt.datetime(2019, 5, 9, 9, 49, 10)],
]


def _same_file_alone_and_in_a_folder(folder, name, write, mapping=None):
    """The documents of folder/name loaded by itself, after checking they equal those of the folder."""
    folder.mkdir()
    write(folder / name)
    in_folder = load_corpus(folder, mapping=mapping)
    alone = load_corpus(folder / name, mapping=mapping)
    assert [d.to_dict() for d in alone.documents] == [d.to_dict() for d in in_folder.documents]
    assert alone.skipped == in_folder.skipped
    return _docs(alone)


def test_single_xlsx_file_loads_like_the_file_in_a_folder(tmp_path):
    docs = _same_file_alone_and_in_a_folder(tmp_path / "c", "m.xlsx", lambda p: _xlsx(p, TIPDM_LIKE),
                                            load_mapping(TIPDM_MAPPING))
    assert sorted(docs) == ["m.xlsx#2549", "m.xlsx#2554"]
    first = docs["m.xlsx#2549"]
    assert (first.title, first.text, first.meta["date"]) == ("A2区物业管理有问题", "经调查，已召开业主大会。", "2019-05-10")
    assert first.meta["message"] == "小区物业扬言要退出。" and first.meta["user"] == "A00045581"
    assert first.meta["message_time"] == "2019/4/25 9:32:09"
    assert docs["m.xlsx#2554"].meta["message_time"] == "2019-04-24 16:03:40"


def test_single_xlsx_file_without_mapping_keeps_the_message_as_metadata(tmp_path):
    docs = _same_file_alone_and_in_a_folder(tmp_path / "c", "m.xlsx", lambda p: _xlsx(p, TIPDM_LIKE))
    first = docs["m.xlsx#2549"]
    assert (first.title, first.meta["date"]) == ("A2区物业管理有问题", "2019-05-10")
    assert first.meta["留言详情"] == "小区物业扬言要退出。" and first.meta["留言用户"] == "A00045581"
    assert first.meta["留言时间"] == "2019/4/25 9:32:09"


def test_single_jsonl_file_loads_like_the_file_in_a_folder(tmp_path):
    lines = [{"docid": "a1", "text": "关于延长春节假期的通知 假期延长至2月2日。", "source": "国务院办公厅"},
             {"docid": "b2", "text": "关于做好复工复产的通知 各地有序复工。"}]
    body = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines) + "{bad\n"
    write = lambda p: p.write_text(body, encoding="utf-8")  # noqa: E731
    docs = _same_file_alone_and_in_a_folder(tmp_path / "auto", "p.jsonl", write)
    assert sorted(docs) == ["p.jsonl#a1", "p.jsonl#b2"]
    assert docs["p.jsonl#a1"].title == "关于延长春节假期的通知" and docs["p.jsonl#a1"].meta == {"source": "国务院办公厅"}
    with_mapping = _same_file_alone_and_in_a_folder(tmp_path / "mapped", "p.jsonl", write, load_mapping(NCP_MAPPING))
    assert sorted(with_mapping) == ["p.jsonl#a1", "p.jsonl#b2"] and with_mapping["p.jsonl#a1"].meta == {}


def test_sidecar_beside_a_single_file_wins_over_the_mapping(tmp_path):
    rows = [["ID", "Reply", "Message"], [7, "回复内容甲。", "留言甲"]]
    _xlsx(tmp_path / "s.xlsx", rows)
    (tmp_path / "s.xlsx.rag.json").write_text(json.dumps({"id": "ID", "text": "Reply", "meta": {"message": "Message"}}),
                                              encoding="utf-8")
    [doc] = load_corpus(tmp_path / "s.xlsx", mapping={"id": "ID", "text": "Message"}).documents
    assert (doc.doc_id, doc.text, doc.meta["message"]) == ("s.xlsx#7", "回复内容甲。", "留言甲")


def test_mapping_naming_a_missing_column_skips_the_file(tmp_path):
    _xlsx(tmp_path / "t.xlsx", XLSX_ROWS)
    result = load_corpus(tmp_path, mapping={"id": "编号", "text": "答复意见"})
    assert result.documents == []
    assert "答复意见" in _skipped(result)["t.xlsx"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_each_encoding(tmp_path, encoding):
    with open(tmp_path / "c.csv", "w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "title", "content", "date"])
        writer.writerow(["a1", "关于供暖的答复", "供暖时间为11月15日至次年3月15日，如有问题请致电。", "2023.11.1"])
        writer.writerow(["a2", "", "", "2023.11.2"])
    result = load_corpus(tmp_path)
    [doc] = result.documents
    assert doc.doc_id == "c.csv#a1" and doc.title == "关于供暖的答复" and doc.meta["date"] == "2023-11-01"
    assert doc.text.startswith("供暖时间为11月15日")
    assert "c.csv#a2" in _skipped(result)


def test_table_without_a_text_column_is_skipped_with_advice(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    result = load_corpus(tmp_path)
    assert result.documents == [] and ".rag.json" in _skipped(result)["x.csv"]


def test_jsonl_rows_bad_lines_and_duplicate_ids(tmp_path):
    lines = [json.dumps({"docid": "d1", "text": "关于延长春节假期的通知 各单位：假期延长至2月2日。"}, ensure_ascii=False),
             "{not json",
             json.dumps({"docid": "d2", "text": "第二篇。"}, ensure_ascii=False),
             json.dumps({"docid": "d1", "text": "重复编号。"}, ensure_ascii=False),
             "[1, 2]"]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_corpus(tmp_path, mapping=load_mapping(NCP_MAPPING))
    docs = _docs(result)
    assert sorted(docs) == ["p.jsonl#d1", "p.jsonl#d2"]
    assert docs["p.jsonl#d1"].title == "关于延长春节假期的通知"
    assert docs["p.jsonl#d1"].text.endswith("假期延长至2月2日。")
    reasons = _skipped(result)
    assert "invalid JSON" in reasons["p.jsonl#line2"] and "not an object" in reasons["p.jsonl#line5"]
    assert "duplicate" in reasons["p.jsonl#d1"]


def test_load_mapping_files_and_errors(tmp_path):
    tipdm = load_mapping(TIPDM_MAPPING)
    assert (tipdm["id"], tipdm["text"], tipdm["title"], tipdm["date"]) == ("留言编号", "答复意见", "留言主题", "答复时间")
    assert tipdm["meta"]["message"] == "留言详情"
    assert {"留言时间", "留言用户"} <= set(tipdm["meta"].values())
    ncp = load_mapping(NCP_MAPPING)
    assert (ncp["id"], ncp["text"], ncp["title"]) == ("docid", "text", None)
    (tmp_path / "bad.json").write_text('{"id": "x"}', encoding="utf-8")
    with pytest.raises(RagError, match="text"):
        load_mapping(tmp_path / "bad.json")
    with pytest.raises(RagError):
        load_mapping(tmp_path / "missing.json")


# ---------------------------------------------------------------- HTML


def _reply_page(seed_text: str) -> str:
    body = [line.strip("\xa0 ") for line in seed_text.split("\n")[7:54]]
    paras = "\n".join(f"<p>{html.escape(line)}</p>" for line in body if line)
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>对政协石家庄市第十四届委员会第四次会议第0520号提案的答复 - 石家庄科技网</title>
<style>.nav {{ color: red }}</style><script>var tracker = "脚本内容不应出现";</script></head><body>
<div class="header"><div class="logo">石家庄市科学技术局</div>
<ul class="nav"><li><a href="/">首页</a></li><li><a href="/a">机构概况</a></li><li><a href="/b">网站地图</a></li></ul></div>
<div class="main"><div class="article"><h1>对政协石家庄市第十四届委员会第四次会议第0520号提案的答复</h1>
<div class="info">发布时间:2024-08-02&nbsp;&nbsp;&nbsp;来源:石家庄科技网</div>
<div class="tools">【字体: <a>大</a> <a>中</a> <a>小</a>】 <a onclick="print()">打印</a></div>
<div class="content">{paras}
<table><tr><th>指标</th><th>数量</th></tr><tr><td>新增高企</td><td>360家</td></tr>
<tr><td>省级重点实验室</td><td>2家</td></tr></table></div>
<div class="share">分享到: <a>微信</a> <a>微博</a></div><div><a>【打印本页】</a> <a>【关闭窗口】</a></div></div></div>
<div class="footer">版权所有:石家庄市科学技术局 网站标识码1301000000 地址:石家庄市某路1号</div></body></html>"""


@pytest.mark.parametrize("use_trafilatura", [True, False])
def test_html_article_text_without_page_furniture(seed_text, use_trafilatura):
    if use_trafilatura:
        pytest.importorskip("trafilatura")
    text, title, page_meta = extract_html(_reply_page(seed_text), use_trafilatura=use_trafilatura)
    assert title == "对政协石家庄市第十四届委员会第四次会议第0520号提案的答复"
    assert page_meta == {"publish_date": "2024-08-02", "source": "石家庄科技网"}
    for paragraph in ["范林委员:", "全市科技型中小企业总数达到18753家", "抄送:市政府办公室,市政协提案委员会。",
                      "领导签发:王金生", "指标: 新增高企; 数量: 360家", "指标: 省级重点实验室; 数量: 2家"]:
        assert paragraph in text
    for furniture in ["脚本内容", "color", "机构概况", "网站地图", "首页", "版权所有", "分享到", "【打印本页】", "关闭窗口"]:
        assert furniture not in text


def test_html_file_becomes_a_reply_document(tmp_path, seed_text):
    (tmp_path / "reply.html").write_text(_reply_page(seed_text), encoding="utf-8")
    (tmp_path / "gbk.htm").write_bytes(
        '<html><head><meta charset="gbk"><title>关于路灯维修的答复</title></head><body><div id="content">'
        "<p>网友：您好！路灯已于3月2日修复。</p></div></body></html>".encode("gbk"))
    docs = _docs(load_corpus(tmp_path))
    doc = docs["reply.html"]
    assert doc.meta["publish_date"] == doc.meta["date"] == "2024-08-02"
    assert doc.meta["sign_date"] == "2024-06-06" and doc.meta["signer"] == "王金生"
    assert doc.meta["doc_number"] == "承办单位提案字〔2024〕第12号" and doc.meta["addressee"] == "范林委员"
    assert doc.content_spans and doc.content_spans[-1][1] <= len(doc.text)
    assert docs["gbk.htm"].title == "关于路灯维修的答复"
    assert "路灯已于3月2日修复" in docs["gbk.htm"].text


# ---------------------------------------------------------------- DOCX


def test_docx_paragraphs_and_tables_in_order(tmp_path):
    import docx

    document = docx.Document()
    document.core_properties.title = "Microsoft Word - 文档1"
    document.add_paragraph("关于加快高新技术企业培育的答复")
    document.add_paragraph("李四委员：")
    document.add_paragraph("现将有关情况答复如下：")
    table = document.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("指标", "数量"), ("新增高企", "360家"), ("总数", "3431家")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    document.add_paragraph("感谢您的关心。")
    document.save(tmp_path / "r.docx")
    [doc] = load_corpus(tmp_path).documents
    assert doc.text.split("\n") == ["关于加快高新技术企业培育的答复", "李四委员：", "现将有关情况答复如下：",
                                    "指标: 新增高企; 数量: 360家", "指标: 总数; 数量: 3431家", "感谢您的关心。"]
    assert doc.title == "关于加快高新技术企业培育的答复" and doc.meta["addressee"] == "李四委员"


def test_empty_and_encrypted_docx_are_skipped(tmp_path):
    import docx

    docx.Document().save(tmp_path / "empty.docx")
    (tmp_path / "locked.docx").write_bytes(OLE_MAGIC + b"\x00" * 504)
    (tmp_path / "locked.xlsx").write_bytes(OLE_MAGIC + b"\x00" * 504)
    result = load_corpus(tmp_path)
    reasons = _skipped(result)
    assert result.documents == []
    assert "empty" in reasons["empty.docx"]
    assert "password-protected" in reasons["locked.docx"] and "password-protected" in reasons["locked.xlsx"]


# ---------------------------------------------------------------- PDF


def cjk_pdf(pages: list[list[str]]) -> bytes:
    """A PDF whose text layer holds Chinese lines in Adobe's standard STSong-Light / UniGB-UTF16-H font."""
    objects: list[str] = [
        "<< /Type /Catalog /Pages 2 0 R >>", "",
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UTF16-H "
        "/DescendantFonts [<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /DW 1000 >>] >>",
    ]
    kids = []
    for lines in pages:
        ops = ["BT /F1 12 Tf 14 TL 72 770 Td"] + [f"<{line.encode('utf-16-be').hex()}> Tj T*" for line in lines]
        stream = "\n".join(ops + ["ET"])
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("ascii")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


PDF_PAGES = [["关于加快科技创新的答复", "王五委员：", "新增高新技术企业360家。"], ["研发投入168.37亿元。", "某某市科学技术局"]]


def test_pdf_pages_and_page_starts(tmp_path):
    (tmp_path / "r.pdf").write_bytes(cjk_pdf(PDF_PAGES))
    [doc] = load_corpus(tmp_path).documents
    assert len(doc.page_starts) == 2 and doc.page_starts[0] == 0
    first, second = doc.text[: doc.page_starts[1]], doc.text[doc.page_starts[1]:]
    assert "新增高新技术企业360家。" in first and first.endswith("\n\n")
    assert second.startswith("研发投入168.37亿元。") and "360家" not in second
    assert doc.title == "关于加快科技创新的答复" and doc.meta["addressee"] == "王五委员"


def test_scanned_and_encrypted_pdfs_are_skipped(tmp_path):
    from pypdf import PdfReader, PdfWriter

    blank = PdfWriter()
    blank.add_blank_page(width=595, height=842)
    blank.write(tmp_path / "scan.pdf")
    (tmp_path / "plain.pdf").write_bytes(cjk_pdf(PDF_PAGES))
    locked = PdfWriter(clone_from=PdfReader(tmp_path / "plain.pdf"))
    locked.encrypt(user_password="secret", algorithm="RC4-128")
    locked.write(tmp_path / "locked.pdf")
    (tmp_path / "plain.pdf").unlink()
    result = load_corpus(tmp_path)
    assert result.documents == []
    reasons = _skipped(result)
    assert reasons["scan.pdf"] == "scanned PDF without a text layer"
    assert reasons["locked.pdf"] == "password-protected PDF"


# ---------------------------------------------------------------- the shared real data


@pytest.mark.shared
def test_tipdm_workbook_loads_with_titles_and_iso_dates(tipdm_xlsx, tmp_path):
    (tmp_path / tipdm_xlsx.name).symlink_to(tipdm_xlsx)
    result = load_corpus(tmp_path, mapping=load_mapping(TIPDM_MAPPING), follow_symlinks=True)
    assert result.skipped == []
    docs = _docs(result)
    assert len(docs) == 2816
    assert all(d.title and ISO.fullmatch(d.meta["date"]) for d in docs.values())
    first = docs["messages_and_replies.xlsx#2549"]
    assert first.title == "A2区景蓉华苑物业管理有问题" and first.meta["date"] == "2019-05-10"
    assert first.meta["message"].startswith("2019年4月以来") and first.meta["user"] == "A00045581"
    assert first.text == first.text.strip() and first.text.startswith("现将网友在平台《问政西地省》栏目")


@pytest.mark.shared
def test_ncp_jsonl_loads_599_documents(ncp_jsonl, tmp_path):
    (tmp_path / ncp_jsonl.name).symlink_to(ncp_jsonl)
    result = load_corpus(tmp_path, mapping=load_mapping(NCP_MAPPING), follow_symlinks=True)
    assert result.skipped == [] and len(result.documents) == 599
    assert all(d.doc_id.startswith("documents.jsonl#") and 0 < len(d.title) <= 60 for d in result.documents)
    assert len({d.doc_id for d in result.documents}) == 599
