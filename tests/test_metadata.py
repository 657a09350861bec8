"""Reply header/footer parsing, page-chrome spans and date normalisation."""
from __future__ import annotations

import datetime as dt

import pytest

from rag.ingest.metadata import find_title, first_sentence, is_chrome, normalize_date, parse_reply

SEED_META = {
    "issuer": "石家庄市科学技术局",
    "publish_date": "2024-08-02",
    "source": "石家庄科技网",
    "doc_number": "承办单位提案字〔2024〕第12号",
    "proposal_number": "0520",
    "addressee": "范林委员",
    "sign_date": "2024-06-06",
    "signer": "王金生",
    "contact_person": "侯彦波",
    "contact_phone": "0311-85057592",
    "cc": "市政府办公室,市政协提案委员会",
    "result": "A",
}
SEED_TITLE = "对政协石家庄市第十四届委员会第四次会议第0520号提案的答复"
# Page chrome of the seed, as the brief lists it (independent of the parser's own rules).
SEED_CHROME_PREFIXES = ("【字体", "政策解读")
SEED_FIELD_LINES = ("是否同意公开:(是)", "办理结果:(A)")  # facts users ask about: content, not chrome


@pytest.fixture(scope="module")
def seed_parsed(seed_text):
    return parse_reply(seed_text)


def test_seed_title(seed_parsed):
    assert seed_parsed[0] == SEED_TITLE


@pytest.mark.parametrize("key", sorted(SEED_META))
def test_seed_header_and_footer_fields(seed_parsed, key):
    assert seed_parsed[1].get(key) == SEED_META[key]


def _lines_with_offsets(text):
    pos = 0
    for raw in text.split("\n"):
        yield pos, pos + len(raw), raw
        pos += len(raw) + 1


def _inside(spans, start, end):
    return any(s <= start and end <= e for s, e in spans)


def _overlaps(spans, start, end):
    return any(s < end and start < e for s, e in spans)


def test_seed_chrome_lines_lie_outside_content_spans(seed_text, seed_parsed):
    spans = seed_parsed[2]
    chrome = [(s, e) for s, e, raw in _lines_with_offsets(seed_text)
              if not raw.strip() or raw.strip().startswith(SEED_CHROME_PREFIXES)]
    assert len(chrome) == 3  # NBSP-only line, font/print, 政策解读
    for start, end in chrome:
        assert not _overlaps(spans, start, end), seed_text[start:end]
    for line in SEED_FIELD_LINES:
        start = seed_text.index(line)
        assert _overlaps(spans, start, start + len(line)), line


def test_seed_disclosure_result_and_proposal_title_are_metadata(seed_parsed):
    meta = seed_parsed[1]
    assert meta["disclosure"] == "是" and meta["result"] == "A"
    assert meta["proposal_title"] == "加快形成新质生产力 助力石家庄高质量发展的建议"


def test_seed_every_body_line_lies_inside_content_spans(seed_text, seed_parsed):
    spans = seed_parsed[2]
    body = [(s, e, raw) for s, e, raw in _lines_with_offsets(seed_text)
            if raw.strip() and not raw.strip().startswith(SEED_CHROME_PREFIXES)]
    assert len(body) == 52  # 50 lines of text + the disclosure and result lines
    for start, end, raw in body:
        assert _inside(spans, start, end), raw
    must_keep = [SEED_TITLE, "发布时间:2024-08-02", "承办单位提案字〔2024〕第12号", "范林委员:", "领导签发:王金生",
                 "联系人及电话:侯彦波,0311-85057592", "抄送:市政府办公室,市政协提案委员会。", "2024年6月6日"]
    for needle in must_keep:
        pos = seed_text.index(needle)
        assert _inside(spans, pos, pos + len(needle)), needle


def test_content_spans_are_sorted_disjoint_and_in_bounds(seed_text, seed_parsed):
    spans = seed_parsed[2]
    assert spans == sorted(spans)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert e1 < s2
    assert all(0 <= s < e <= len(seed_text) for s, e in spans)
    assert all(seed_text[s] not in " \n\xa0" and seed_text[e - 1] not in " \n\xa0" for s, e in spans)


def test_full_width_punctuation_and_spaces_give_the_same_fields(seed_text):
    variant = (seed_text.replace(":", "：").replace("(", "（").replace(")", "）").replace("\xa0", "\u3000"))
    title, meta, _ = parse_reply(variant)
    assert title == SEED_TITLE
    assert {k: meta.get(k) for k in SEED_META} == SEED_META


def test_title_broken_over_two_lines_is_joined(seed_text):
    lines = seed_text.split("\n")
    without_page_title = "\n".join(lines[:2] + lines[4:])  # drop the one-line title and the 发布时间 line
    assert parse_reply(without_page_title)[0] == SEED_TITLE
    assert find_title("承办单位提案字〔2024〕第12号\n对政协某市第一届委员会\n第二次会议第0001号提案的答复\n某委员:") \
        == "对政协某市第一届委员会第二次会议第0001号提案的答复"


def test_a_differently_laid_out_reply():
    text = (
        "关于市十五届人大三次会议第123号建议的答复\n"
        "张三代表：\n"
        "\u3000\u3000您提出的《关于加强老旧小区改造的建议》收悉。现答复如下：\n"
        "\u3000\u3000一、关于改造资金。今年我市共安排老旧小区改造资金2.3亿元，涉及小区56个。\n"
        "\u3000\u3000感谢您对我们工作的关心和支持。\n"
        "\n"
        "\u3000\u3000\u3000\u3000某某市住房和城乡建设局\n"
        "\u3000\u3000\u3000\u3000\u30002023年7月15日\n"
        "（联系人：李四\u3000联系电话：0311-12345678）\n"
    )
    title, meta, spans = parse_reply(text)
    assert title == "关于市十五届人大三次会议第123号建议的答复"
    assert meta["proposal_number"] == "123"
    assert meta["addressee"] == "张三代表"
    assert meta["issuer"] == "某某市住房和城乡建设局"
    assert meta["sign_date"] == meta["date"] == "2023-07-15"
    assert (meta["contact_person"], meta["contact_phone"]) == ("李四", "0311-12345678")
    assert "publish_date" not in meta and "signer" not in meta
    blank = text.index("\n\n") + 1
    assert not _overlaps(spans, blank, blank + 1)
    assert _inside(spans, text.index("2.3亿元"), text.index("2.3亿元") + 5)


@pytest.mark.parametrize("text, title", [
    ("今天召开了全市科技工作会议。会议部署了全年任务。", "今天召开了全市科技工作会议"),
    ("\n\n  第一行就是标题\n正文内容在这里。", "第一行就是标题"),
    ("国家税务总局南阳市税务局 国家税务总局各省辖市税务局，局内各单位：为坚决贯彻", "国家税务总局南阳市税务局"),
    ("甲" * 100, "甲" * 60),
])
def test_text_without_header_takes_its_first_line_or_sentence(text, title):
    assert parse_reply(text)[0] == title
    assert first_sentence(text) == title


@pytest.mark.parametrize("line", [
    "【字体: 】\xa0\xa0\xa0\xa0打印", "政策解读", "分享到",
    "分享到：微信 微博", "关闭窗口", "【打印本页】", "【关闭窗口】", "字号：大 中 小", "\xa0", "\u3000\u3000", "",
])
def test_chrome_lines(line):
    assert is_chrome(line)


@pytest.mark.parametrize("line", [
    "(一)开展研发投入提升工作。", "范林委员:", "2024年6月6日", "三、人才培养", "石家庄市科学技术局",
    "抄送:市政府办公室,市政协提案委员会。", "发布时间:2024-08-02\xa0\xa0来源:石家庄科技网", "中小企业",
])
def test_content_lines_are_not_chrome(line):
    assert not is_chrome(line)


@pytest.mark.parametrize("value, iso", [
    ("2024年6月6日", "2024-06-06"),
    ("2024年06月06日", "2024-06-06"),
    ("2024-08-02", "2024-08-02"),
    ("2024/6/6", "2024-06-06"),
    ("2024.6.6", "2024-06-06"),
    ("２０２４年６月６日", "2024-06-06"),
    ("二〇二四年六月六日", "2024-06-06"),
    ("二○二三年十二月二十六日", "2023-12-26"),
    ("2024年06月", "2024-06-01"),
    ("2019/5/9 9:49:00", "2019-05-09"),
    ("2019/5/10 14:56:53", "2019-05-10"),
    ("2024-08-02T10:30:00", "2024-08-02"),
    (" 2024年6月6日 ", "2024-06-06"),
    ("20240606", "2024-06-06"),
    (dt.datetime(2019, 4, 8, 8, 37, 20), "2019-04-08"),
    (dt.date(2020, 1, 2), "2020-01-02"),
    ("2024-13-01", None),
    ("2023年2月30日", None),
    ("第0520号", None),
    ("0520", None),
    ("发布时间:2024-08-02", None),
    ("", None),
    ("abc", None),
    (None, None),
    (43594.4, None),
])
def test_normalize_date(value, iso):
    assert normalize_date(value) == iso
