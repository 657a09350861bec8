"""BM25 tokens: figures kept whole, width-insensitive, stop words gone, and they rank the right paragraph."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import bm25s
import numpy as np
import pytest
from conftest import REPO

from rag.search import tokenize as tokenize_module
from rag.ingest.chunking import chunk_document, embedding_text
from rag.ingest.metadata import parse_reply
from rag.search.tokenize import STOP_WORDS_EN, STOP_WORDS_ZH, tokenize
from rag.types import Document


@pytest.mark.parametrize(
    "text,token",
    [
        ("全年新增高新技术企业360家", "360家"),
        ("经费投入168.37亿元,占到全省总量的19.83%", "168.37亿元"),
        ("经费投入168.37亿元,占到全省总量的19.83%", "19.83%"),
        ("《实施方案》(石传〔2022〕18号)", "石传〔2022〕18号"),
        ("《实施方案》(石传〔2022〕18号)", "〔2022〕18号"),
        ("联系人及电话:侯彦波,0311-85057592", "0311-85057592"),
        ("给予1000万元科研经费支持", "1000万元"),
        ("我市共选派科技特派员687人", "687人"),
        ("举办粉体技术创新等28场高端学术交流活动", "28场"),
        ("组织实施电子信息领域市级科技计划项目17项", "17项"),
        ("2022年度(目前最新数据)", "2022年度"),
        ("2022年度(目前最新数据)", "2022年"),
        ("对政协第四次会议第0520号提案的答复", "0520号"),
        ("研究与试验发展(R&D)经费投入", "r&d"),
        ("研究与试验发展(R&D)经费投入", "rd"),
        ("于2023年10月24日发布了申报指南", "2023年10月24日"),
        ("于2023年10月24日发布了申报指南", "2023年"),
        ("5G等新一代信息技术", "5g"),
    ],
)
def test_figures_are_whole_tokens(text, token):
    assert token in tokenize(text)


def test_document_number_is_one_token_with_its_year():
    tokens = tokenize("石传〔2022〕18号")
    assert "石传〔2022〕18号" in tokens and "2022" in tokens
    assert not {"18", "18号", "〔", "〕"} & set(tokens)
    assert "〔2022〕18号" in tokenize("石传[2022]18号")  # other bracket styles meet the same token


def test_dates_in_either_format_share_a_token():
    iso, written = tokenize("发布时间:2024-08-02"), tokenize("2024年8月2日发布")
    assert {"2024-08-02", "2024年8月2日", "2024年"} <= set(iso) & set(written)


def test_full_width_query_matches_half_width_document():
    assert tokenize("２０２３年") == tokenize("2023年")
    assert "2023年" in tokenize("２０２３年")
    assert tokenize("（Ｒ＆Ｄ）经费投入１６８．３７亿元，占１９．８３％") == tokenize("(R&D)经费投入168.37亿元,占19.83%")
    assert tokenize("电话０３１１－８５０５７５９２") == tokenize("电话0311-85057592")


def test_punctuation_and_stop_words_are_dropped():
    tokens = tokenize("请问：2023年全年新增了多少家高新技术企业？都有哪些？是什么的情况了。“”《》、，")
    assert tokens
    for token in tokens:
        assert token.strip() == token and token
        assert re.search(r"[\w]", token), token
        assert token not in STOP_WORDS_ZH
    assert not {"的", "了", "是", "多少", "什么", "哪些", "请问"} & set(tokens)
    english = tokenize("What is the R&D budget of the city?")
    assert not STOP_WORDS_EN & set(english) and {"budget", "city", "r&d"} <= set(english)


def test_bigrams_cover_chinese_runs_and_can_be_switched_off():
    with_bigrams = tokenize("联系人及电话:侯彦波")
    assert {"侯彦", "彦波"} <= set(with_bigrams)  # a name jieba may not know still matches by halves
    words_only = tokenize("联系人及电话:侯彦波", bigrams=False)
    assert "侯彦" not in words_only and "电话" in words_only
    bigrams_only = tokenize("全年新增高新技术企业360家", words=False)
    assert "高新技术" not in bigrams_only and {"新技", "术企", "360家"} <= set(bigrams_only)
    # stop words break the bigram runs: no bigram straddles 多少
    assert not {"少家", "了多"} & set(tokenize("新增了多少家"))


def test_user_words_make_splits_independent_of_context():
    for word, sentence in [("众创空间", "我市建成了众创空间孵化基地"), ("留抵退税", "我市设立了留抵退税通道")]:
        alone = set(tokenize(word, bigrams=False))
        assert alone <= set(tokenize(sentence, bigrams=False)), word


def test_no_empty_tokens_on_real_text(seed_text):
    tokens = tokenize(seed_text)
    assert tokens and all(tokens)
    for figure in re.findall(r"\d+(?:\.\d+)?(?:家|项|人|场|亿元|万元|%)", seed_text):
        assert figure in tokens, figure


@pytest.mark.shared
def test_no_empty_tokens_on_ncp_policies(ncp_jsonl):
    with ncp_jsonl.open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(40), fh)]
    for text in texts:
        tokens = tokenize(text)
        assert tokens and all(tokens)


def test_initialisation_is_quiet():
    code = "from rag.search.tokenize import tokenize; print(tokenize('全年新增高新技术企业360家'))"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "360家" in run.stdout
    assert run.stderr == ""  # jieba's "Building prefix dict ..." chatter is silenced


def test_concurrent_first_use_gives_the_same_tokens(monkeypatch):
    text = "市科技局高度重视推动新一代电子信息产业发展,驻冀高校基础研究"
    expected = tokenize(text)
    monkeypatch.setattr(tokenize_module, "_segmenters", {})  # force a fresh initialisation race
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(tokenize(text))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 6


def test_bm25_ranks_the_paragraph_holding_the_answer(seed_text):
    title, meta, spans = parse_reply(seed_text)
    doc = Document("seed.txt", seed_text, title=title, meta=meta, content_spans=spans)
    chunks = chunk_document(doc)
    bm25 = bm25s.BM25()
    bm25.index([tokenize(embedding_text(c, title)) for c in chunks], show_progress=False)

    def top(question: str) -> str:
        tokens = [t for t in tokenize(question) if t in bm25.vocab_dict]
        return chunks[int(np.argmax(bm25.get_scores(tokens)))].text

    cases = {
        "2023年全年新增了多少家高新技术企业？": "全年新增高新技术企业360家",
        "２０２３年全年新增了多少家高新技术企业？": "全年新增高新技术企业360家",
        "侯彦波的电话号码": "0311-85057592",
        "驻冀高校基础研究项目立项了多少个": "立项90个",
        "石传〔2022〕18号文件是什么": "石家庄市深化科技体制改革",
        "R&D经费投入强度是多少": "2.52%",
        "今年举办了多少场高端学术交流活动": "28场",
    }
    for question, answer in cases.items():
        assert answer in top(question), question
