"""The right paragraph of the reference reply is in the hybrid top 3 for varied questions."""
from __future__ import annotations

import pytest

from rag.text import normalize

# (question, a verbatim piece of the paragraph that answers it)
CASES = [
    ("2023年新增多少家高新技术企业", "全年新增高新技术企业360家"),
    ("石家庄高新技术企业总数是多少", "总数达到3431家"),
    ("2022年度研发经费投入多少亿元", "经费投入168.37亿元"),
    ("R&D经费投入强度是多少", "R&D经费投入强度"),
    ("研发投入占全省总量的比例", "占到全省总量的19.83%"),
    ("驻冀高校基础研究项目立项多少个", "立项90个"),
    ("省级基础学科研究中心有几家", "3家省级基础学科研究中心"),
    ("科技型中小企业总数", "总数达到18753家"),
    ("哪些企业被认定为河北省科技领军企业", "河北航天信息技术有限公司"),
    ("电子信息领域市级科技计划项目有多少项", "市级科技计划项目17项"),
    ("2023年新增科技创新平台多少家", "共新增29家"),
    ("选派了多少名科技特派员", "选派科技特派员687人"),
    ("高层次人才给予多少科研经费支持", "给予1000万元科研经费支持"),
    ("人才绿卡补贴拨付了多少钱", "拨付补贴经费197.4344万元"),
    ("举办了多少场高端学术交流活动", "28场高端学术交流活动"),
    ("人才飞地最高给多少经费", "给予最高100万元经费支持"),
    ("未来产业布局哪些方向", "空天信息与半导体"),
    ("这份答复的签发人是谁", "领导签发:王金生"),
    ("联系人电话是多少", "0311-85057592"),
    ("提高全社会研发投入的若干措施文号", "石科创领办函〔2022〕1号"),
    ("基础研究项目申报指南什么时候发布", "2023年10月24日"),
    ("研发投入为什么大幅提升", "研发投入各项指标的大幅提升主要得益于"),
    ("怎样为未来产业提供资金保障", "构建多元化资金投入机制"),
    ("去年给企业派了多少技术专家下去服务", "选派科技特派员687人"),
    ("吸引京津大院大所落地的做法", "京字号"),
    ("How many high-tech enterprises were added in 2023?", "全年新增高新技术企业360家"),
    ("What is the R&D investment intensity?", "R&D经费投入强度"),
    ("How many science and technology commissioners were dispatched?", "选派科技特派员687人"),
    ("Which future industries will Shijiazhuang develop?", "空天信息与半导体"),
    ("Who signed the reply?", "领导签发:王金生"),
    ("How many basic research projects for universities were approved?", "立项90个"),
]


@pytest.mark.parametrize("question,evidence", CASES, ids=[q for q, _ in CASES])
def test_right_paragraph_in_top3(reference_index, question, evidence):
    hits = reference_index.search(question, k=3)
    assert any(normalize(evidence) in normalize(h.text) for h in hits), [h.text[:40] for h in hits]
