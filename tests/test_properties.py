"""Property-based tests: arbitrary Unicode (lone surrogates and controls included), sizes and types fed to
`search`, `answer`, `document` and the filters give a clear RagError or a valid result, never anything else."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import rag
from rag.search.index import MAX_K, MAX_QUESTION_INPUT
from rag.search.retrieval import FILTER_KEYS, MODES
from rag.types import Answer, Hit, RagError

from test_hardening import write_corpus

EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

any_char = st.characters(exclude_categories=())  # every code point, lone surrogates (Cs) and controls included
texts = st.one_of(
    st.text(any_char, max_size=60),
    st.text(st.sampled_from("供水管网改造公里2023年答复？ \n\t\x1b\x00\ud800"), max_size=40),
    st.integers(0, 3).map(lambda n: "改造" * (MAX_QUESTION_INPUT // 2 - 1 + n)),  # around the input cap
)
not_text = st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.binary(max_size=8),
                     st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                 max_size=2))
questions = st.one_of(texts, not_text)
ks = st.one_of(st.integers(-3, MAX_K + 3), st.floats(allow_nan=True), st.text(max_size=4), st.none(), st.booleans())
modes = st.one_of(st.sampled_from(MODES), st.text(max_size=8), st.integers(), st.none())
filter_values = st.one_of(st.text(any_char, max_size=20), st.sampled_from(["2024", "2024-03-15", "2024年3月", "20240101",
                                                                          "water.txt", "市水务局"]),
                          st.integers(-5, 3000), st.floats(), st.none(), st.booleans(),
                          st.lists(st.text(max_size=10), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                      st.integers(), max_size=2))
filters = st.one_of(st.none(), st.dictionaries(st.one_of(st.sampled_from(FILTER_KEYS), st.text(max_size=8), st.none(),
                                                         st.integers()), filter_values, max_size=3),
                    not_text, st.text(max_size=10))


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> rag.Index:
    root: Path = tmp_path_factory.mktemp("props")
    return rag.build_index(write_corpus(root / "corpus"), root / "index", progress=False)


def valid_hit(index: rag.Index, hit: Hit) -> bool:
    doc = index.document(hit.doc_id)
    return (doc.text[hit.start:hit.end] == hit.text
            and all(0 <= s < e <= len(hit.text) for s, e in hit.highlights))


# Each argument arbitrary while the others are usual values (so most calls get past the first check), then all at once.
usual_k = st.sampled_from([1, 3, 5])
usual_mode = st.sampled_from(MODES)
usual_filters = st.sampled_from([None, {}, {"year": "2024"}, {"doc_id": "water.txt"}, {"date_from": "2023年6月"}])
usual_question = st.sampled_from(["改造了多少公里供水管网？", "How much was invested in rural roads?", "答复"])
CALLS = {
    "question": dict(question=questions, k=usual_k, mode=usual_mode, chosen=usual_filters),
    "k": dict(question=usual_question, k=ks, mode=usual_mode, chosen=usual_filters),
    "mode": dict(question=usual_question, k=usual_k, mode=modes, chosen=usual_filters),
    "filters": dict(question=usual_question, k=usual_k, mode=usual_mode, chosen=filters),
    "everything": dict(question=questions, k=ks, mode=modes, chosen=filters),
}


def call(method, question, k, mode, chosen):
    """The call's result, or None after a RagError with a message (anything else fails the test)."""
    try:
        result = method(question, k=k, mode=mode, filters=chosen)
    except RagError as exc:
        event("RagError")
        assert str(exc)
        return None
    event("result")
    assert isinstance(k, int) and 1 <= k <= MAX_K
    return result


def check_hits(index, hits, k) -> None:
    assert len(hits) <= k and all(valid_hit(index, h) for h in hits)


def check_answer(index, answer, k) -> None:
    assert isinstance(answer, Answer) and isinstance(answer.found, bool) and isinstance(answer.text, str)
    check_hits(index, answer.citations, k)
    assert not answer.found or answer.citations
    answer.text.encode("utf-8")  # what the web and the CLI print must be encodable
    for hit in answer.citations:
        hit.text.encode("utf-8")


@pytest.mark.parametrize("method,check", [("search", check_hits), ("answer", check_answer)])
@pytest.mark.parametrize("arbitrary", list(CALLS))
def test_search_and_answer_give_a_result_or_a_rag_error(index, arbitrary, method, check):
    @EXAMPLES
    @given(**CALLS[arbitrary])
    def run(question, k, mode, chosen):
        result = call(getattr(index, method), question, k, mode, chosen)
        if result is not None:
            check(index, result, k)

    run()


@EXAMPLES
@given(doc_id=st.one_of(st.text(any_char, max_size=300), st.sampled_from(["water.txt", "roads.txt", "../etc/passwd"]),
                        not_text))
def test_document_gives_the_document_or_a_rag_error(index, doc_id):
    try:
        doc = index.document(doc_id)
    except RagError as exc:
        event("RagError")
        assert len(str(exc)) < 300
        return
    event("result")
    assert doc.doc_id == doc_id and doc_id in ("water.txt", "roads.txt")


@EXAMPLES
@given(chosen=filters)
def test_filters_are_checked_or_refused(chosen):
    from rag.search.retrieval import check_filters, document_matches

    try:
        checked = check_filters(chosen)
    except RagError as exc:
        event("RagError")
        assert str(exc)
        return
    event("result")
    assert set(checked) <= set(FILTER_KEYS)
    assert all(isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
               for v in checked.values())
    assert isinstance(document_matches("water.txt", {"issuer": "市水务局", "publish_date": "2024-03-15"}, checked), bool)
