"""The Gradio web chat: a thin layer over rag.Index (answer, document, documents), plus named API endpoints.

    from ui.app import serve
    serve("corpus", "index")                      # http://127.0.0.1:7860

Endpoints for scripts (gradio_client): /ask, /document, /documents — see README "Web chat"; the REST API
(ui/rest.py) is mounted at /api/v1 of the same server. 👍/👎 on a reply go to rag.feedback. With a language model
configured (`llm`, rag.generation.LLMConfig) the toolbar has a "Written answer" switch: the model writes the answer
from the passages, streamed into the chat, then checked against them (rag.generation).
Documents are only ever read through `index.document(doc_id)`; no request names a file path. The "Add documents"
panel adds and deletes uploads through ui.uploads, which swaps the served index after each build.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, Iterator
from urllib.parse import urlsplit

import gradio as gr
from starlette.middleware import Middleware
from starlette.routing import Mount

from rag.feedback import FeedbackStore
from rag.generation.written import NOT_CONFIGURED
from rag.search.index import Index, build_index, index_exists, load_index
from rag.search.index import check_question as checked_question
from rag.types import Answer, Document, Hit, QuestionTooLong, RagError, shown
from ui.limits import BodyLimit
from ui.render import (
    answer_json,
    answer_markdown,
    change_html,
    document_date,
    document_html,
    document_json,
    document_summary,
    empty_document_html,
    markdown_escape,
    notice_html,
    sources_html,
    writing_markdown,
    writing_sources_html,
)
from ui.uploads import (
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_UPLOAD_BYTES,
    SUFFIXES,
    UPLOADS,
    Change,
    CurrentIndex,
    Library,
    UploadRefused,
    deletable,
    mib,
)

if TYPE_CHECKING:
    from rag.generation import LLMConfig

log = logging.getLogger(__name__)

MODES = [("Hybrid", "hybrid"), ("Keyword", "bm25"), ("Semantic", "dense")]  # (label, value)
MODE_ALIASES = {"keyword": "bm25", "semantic": "dense", "bm25": "bm25", "dense": "dense", "hybrid": "hybrid"}
MAX_K = 10
DEFAULT_K = 5
# Answers run at most this many at once (2 cores); everyone else waits in the queue instead of being dropped.
CONCURRENCY = int(os.environ.get("RAG_UI_CONCURRENCY", "2"))
# One budget for the chat, /ask and the REST API together (Gradio's queue limits only its own events).
ANSWER_SLOTS = threading.BoundedSemaphore(CONCURRENCY)
STREAM_INTERVAL = 0.1  # seconds: a written answer is shown as it streams in, at most this often
MAX_SHOWN_QUESTION = 600  # characters of a long pasted question echoed in the chat
# Largest HTTP request body: the page's biggest request carries the chat history (a few KB a turn), a question at
# its 20,000-character limit is at most ~120 KB as JSON; anything near this cap is not a question.
MAX_BODY_BYTES = int(os.environ.get("RAG_MAX_BODY_BYTES", str(2 * 1024 * 1024)))
EXAMPLES = [
    "2023年石家庄新增了多少家高新技术企业？",
    "How many high-tech enterprises were added in 2023?",
    "2022年研发经费投入是多少？",
    "这份答复是哪个部门发布的？",
]
UPLOAD_ROUTE = "/gradio_api/upload"  # where the page's file box sends its files
UPLOAD_HINT = (f'<div class="upload-report">{" ".join(SUFFIXES)}, up to {MAX_FILES} files and '
               f'{mib(MAX_UPLOAD_BYTES)} at once: saved in <code>{UPLOADS}/</code> of the corpus folder and '
               'indexed as <code>rag build</code> does. Only documents added here can be deleted here; the others '
               'belong to the corpus folder. 仅可删除在此添加的文档。</div>')
FONTS = ("system-ui", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "sans-serif")

CSS = """
.gradio-container { padding-top: 0 !important; padding-bottom: 0 !important; }
.gradio-container .main, .gradio-container .wrap.fillable { padding-top: 6px !important; }
#examples .gallery-item { padding: 0 !important; font-size: 13px !important; }
#examples .gallery-item .gallery { padding: 3px 8px !important; }
#examples .gallery { gap: 6px !important; }
#mode .wrap { flex-wrap: nowrap !important; gap: 6px !important; }
#mode label { padding: 6px 10px !important; }
#app-header { display: flex; align-items: baseline; gap: 14px; margin: 0 0 0 2px; }
#app-header h1 { font-size: 20px; margin: 0; }
#app-header .stats { color: var(--body-text-color-subdued); font-size: 13px; }
#toolbar { gap: 8px; }
#generate { min-width: 180px !important; flex-grow: 2 !important; word-break: keep-all; }  /* Checkbox drops min_width */
#chat mark.unsupported { background: #ffe3e3; color: #8a1c1c; text-decoration: underline wavy #d33;
  text-underline-offset: 3px; }
.panel-title { position: sticky; top: -8px; z-index: 1; background: var(--block-background-fill); font-weight: 600;
  font-size: 14px; margin: -8px -8px 6px -8px; padding: 6px 10px; border-bottom: 1px solid var(--border-color-primary); }
.src-list, .doc-view { height: calc(100vh - 230px); min-height: 300px; overflow-y: auto; position: relative;
  border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px; background: var(--block-background-fill); }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 8px;
  cursor: pointer; background: var(--background-fill-primary); }
.src-card:hover, .src-card:focus { border-color: var(--color-accent); outline: none; }
.src-card.active { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
.src-head { font-weight: 600; font-size: 14px; line-height: 1.35; }
.src-num { color: var(--color-accent); }
.src-meta, .doc-id { color: var(--body-text-color-subdued); font-size: 12px; margin-top: 2px; }
.src-section { color: var(--body-text-color-subdued); font-size: 12px; font-style: italic; margin-top: 2px; }
.src-text { font-size: 13.5px; line-height: 1.6; margin-top: 4px; white-space: pre-wrap; }
mark { background: #ffe066; color: inherit; padding: 0 1px; border-radius: 2px; }
.not-found { background: #fff4e5; border: 1px solid #f0b35b; color: #7a4b00; border-radius: 8px;
  padding: 8px 10px; margin-bottom: 8px; font-size: 14px; }
.not-found span { font-size: 12.5px; }
.doc-title { font-weight: 600; font-size: 15px; line-height: 1.4; }
.doc-meta { font-size: 12px; margin: 6px 0; border-collapse: collapse; }
.doc-meta th { text-align: left; font-weight: 500; color: var(--body-text-color-subdued); padding: 1px 10px 1px 0;
  white-space: nowrap; vertical-align: top; border: none; }
.doc-meta td { padding: 1px 0; border: none; }
.doc-text { white-space: pre-wrap; font-size: 13.5px; line-height: 1.65; border-top: 1px solid var(--border-color-primary);
  padding-top: 6px; }
.cited { background: #e3edff; border-radius: 3px; }
.src-empty, .doc-empty, .src-none { color: var(--body-text-color-subdued); font-size: 13px; }
.upload-report { font-size: 13px; line-height: 1.5; }
.upload-report ul { margin: 2px 0 0 18px; padding: 0; }
.upload-report code { font-size: 12px; }
.up-added, .up-removed { color: #1f6f2b; }
.up-skipped, .up-notice { color: #7a4b00; }
.up-notice { background: #fff4e5; border: 1px solid #f0b35b; border-radius: 6px; padding: 6px 8px; }
#delete-row { align-items: flex-end; }
#add-docs { padding-top: 6px !important; padding-bottom: 6px !important; }
.up-total { color: var(--body-text-color-subdued); font-size: 12px; }
"""

# Sources panel: a click (or Enter) on a card reports its number to Python, which renders the document view.
SOURCES_JS = """
const pick = (card) => {
  element.querySelectorAll('.src-card.active').forEach(c => c.classList.remove('active'));
  card.classList.add('active');
  trigger('click', {cite: parseInt(card.dataset.cite, 10)});
};
element.addEventListener('click', (e) => { const card = e.target.closest('[data-cite]'); if (card) pick(card); });
watch('value', () => { const list = element.querySelector('.src-list'); if (list) list.scrollTop = 0; });
element.addEventListener('keydown', (e) => {
  const card = e.target.closest('[data-cite]');
  if (card && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); pick(card); }
});
"""
# Document view: after each render, scroll the cited paragraph into view inside the viewer.
DOCUMENT_JS = """
const show = () => {
  const box = element.querySelector('.doc-view');
  const cited = element.querySelector('#rag-cited');
  if (box && cited) { box.scrollTop = Math.max(0, cited.offsetTop - 48); }
  else if (box) { box.scrollTop = 0; }
};
watch('value', () => setTimeout(show, 30));
setTimeout(show, 30);
"""


def user_error(message: str, title: str) -> gr.Error:
    """A refusal shown to the user; gradio prints no traceback for it, since nothing is broken."""
    return gr.Error(message, title=title, print_exception=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors into messages the browser and gradio_client show: RagError text as is, others generic."""
    try:
        yield
    except gr.Error:
        raise
    except RagError as exc:
        raise user_error(str(exc), "Cannot answer") from None
    except Exception as exc:  # a bug: the one full trace goes to the server log, the user gets a readable line
        log.exception("request failed")
        raise user_error(f"internal error ({type(exc).__name__}); see the server log", "Error") from None


def whole_number(value: Any) -> int | None:
    """A whole number from a request (a slider sends 5.0, a script "5"), or None when it is not one."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_question(question: Any) -> str:
    """The question, refused (rag's check: text, not empty, within MAX_QUESTION_INPUT) before it is echoed,
    queued or embedded."""
    try:
        return checked_question(question)
    except RagError as exc:
        raise user_error(str(exc), "Question too long" if isinstance(exc, QuestionTooLong) else "Cannot answer") from None


def filter_value(name: str, value: Any) -> str:
    """One filter field as text ("" = no restriction); a script may send a whole number, e.g. year=2024."""
    if value is None or isinstance(value, str):
        return (value or "").strip()
    number = whole_number(value)
    if number is None:
        raise RagError(f"{name} must be text or a whole number, got {shown(value)}")
    return str(number)


def build_filters(doc_id: Any = None, issuer: Any = None, year: Any = None) -> dict[str, Any]:
    """Filters for rag.Index from the UI/API fields; empty fields mean no restriction."""
    fields = (("doc_id", doc_id), ("issuer", issuer), ("year", year))
    return {name: text for name, value in fields if (text := filter_value(name, value))}


def resolve_mode(mode: Any) -> str:
    """Accept the index's names and the UI's words (keyword, semantic); no mode means hybrid."""
    key = (mode or "hybrid").strip().lower() if isinstance(mode, str) or mode is None else None
    if key not in MODE_ALIASES:
        raise RagError(f"unknown mode {shown(mode)}; choose hybrid, keyword (bm25) or semantic (dense)")
    return MODE_ALIASES[key]


def parse_k(k: Any) -> int:
    """The number of sources from a request: a whole number from 1 to MAX_K; none given means DEFAULT_K."""
    value = DEFAULT_K if k is None else whole_number(k)
    if value is None or not 1 <= value <= MAX_K:
        raise RagError(f"k must be a whole number from 1 to {MAX_K}, got {shown(k)}")
    return value


def optional_offset(value: Any, name: str) -> int | None:
    """A character offset from a request, or None when not given."""
    if value is None or value == "":
        return None
    offset = whole_number(value)
    if offset is None:
        raise RagError(f"{name} must be a character offset (a whole number), got {shown(value)}")
    return offset


def shorten(text: str, limit: int = MAX_SHOWN_QUESTION) -> str:
    """A long pasted question, cut for display only."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def answer_footer(answer: Answer, mode: str) -> str:
    """Mode, number of sources and time, shown under each reply (and that the language model wrote it)."""
    label = dict((v, k) for k, v in MODES).get(mode, mode)
    seconds = answer.elapsed_ms / 1000
    written = " · written by the language model 模型撰写" if answer.generated else ""
    return f"\n\n*{label} · {plural(len(answer.citations), 'source')} · {seconds:.2f} s{written}*"


def run_answer(index: Index, question: str, k: int, mode: str, filters: dict, history: list | None = None,
               generate: bool = False, llm: "LLMConfig | None" = None,
               on_text: Callable[[str], None] | None = None) -> Answer:
    """index.answer within the server's one answer budget (ANSWER_SLOTS), for the chat, /ask and the REST API
    alike: its place is held while the answer is retrieved and extracted, and given up while the served language
    model writes (waiting costs no CPU). A server without a model answers as always, with the note that says so
    (never the RAG_LLM_* variables of whoever imports this)."""
    held = [ANSWER_SLOTS.acquire()]

    def free_slot(_extracted: Answer | None = None) -> None:
        if held:  # once, at the extraction or at the end
            held.pop()
            ANSWER_SLOTS.release()

    try:
        if generate and llm is None:
            return replace(index.answer(question, k=k, mode=mode, filters=filters, history=history),
                           note=NOT_CONFIGURED)
        return index.answer(question, k=k, mode=mode, filters=filters, history=history, generate=bool(generate),
                            llm=llm, on_text=on_text, on_extracted=free_slot)
    finally:
        free_slot()


def as_switch(value: Any) -> bool:
    """The written-answer switch from a request: true or false (a script may send 0/1 or "true"/"false")."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise RagError(f"generate must be true or false, got {shown(value)}")


def filter_choices(index: Index) -> tuple[list, list, list]:
    """Dropdown choices (label, value) for document, issuer and year, each starting with 'all'."""
    docs, issuers, years = [], set(), set()
    for doc in sorted(index.documents(), key=lambda d: d.doc_id):
        title = doc.title or doc.doc_id
        label = title if len(title) <= 48 else title[:47] + "…"
        docs.append((f"{label} ({doc.doc_id})" if label != doc.doc_id else label, doc.doc_id))
        if doc.meta.get("issuer"):
            issuers.add(str(doc.meta["issuer"]))
        date = document_date(doc.meta)
        if date[:4].isdigit():
            years.add(date[:4])
    return ([("All 全部", "")] + docs,
            [("All 全部", "")] + [(i, i) for i in sorted(issuers)],
            [("All 全部", "")] + [(y, y) for y in sorted(years, reverse=True)])


class WebChat:
    """The handlers behind the page and the API; each reads the current index once, through its public methods,
    so a request keeps the index it started with while an upload swaps in the next one."""

    def __init__(self, index: Index | CurrentIndex, library: Library | None = None, llm: "LLMConfig | None" = None):
        self.current = CurrentIndex.of(index)
        self.library = library or Library(self.current, None)
        self.llm = llm  # the served language model (None: answers are extracted only, and the page has no switch)

    # ---- API ----------------------------------------------------------------------------------
    def ask(self, question: str, mode: str = "hybrid", k: int = DEFAULT_K, doc_id: str = "", issuer: str = "",
            year: str = "", generate: bool = False) -> dict:
        """Answer a question; JSON with the answer, found flag, time and citations (with <mark> HTML); `generate`:
        the language model writes it, checked (generated, verified, unsupported, statements, extractive)."""
        with user_errors():
            resolved, switch = resolve_mode(mode), as_switch(generate)
            question, k, filters = check_question(question), parse_k(k), build_filters(doc_id, issuer, year)
            answer = run_answer(self.current.get(), question, k, resolved, filters, generate=switch, llm=self.llm)
            return answer_json(answer, resolved)

    def document(self, doc_id: str, start: int | None = None, end: int | None = None) -> dict:
        """One indexed document: title, meta, text, and escaped HTML with [start, end) marked as cited."""
        with user_errors():
            doc = find_document(self.current.get(), doc_id)
            return document_json(doc, optional_offset(start, "start"), optional_offset(end, "end"))

    def documents(self) -> list[dict]:
        """Every indexed document: doc_id, title, issuer, date, chunks."""
        with user_errors():
            return document_list(self.current.get())

    # ---- page ---------------------------------------------------------------------------------
    def accept(self, question: str, history: list) -> tuple[list, str, str]:
        """Show the question at once and clear the box; the answer follows in `respond`."""
        if not isinstance(question, str) or not question.strip():
            raise user_error("Type a question first, e.g. 2023年石家庄新增了多少家高新技术企业？", "Empty question")
        check_question(question)
        history = list(history or []) + [{"role": "user", "content": markdown_escape(shorten(question.strip()))}]
        return history, "", question

    def respond(self, question: str, history: list, mode: str, k: int, doc_id: str, issuer: str,
                year: str, turns: list, generate: bool = False) -> tuple[list, str, str, list, list]:
        """Answer the pending question: chat reply, sources panel, first cited document, citation state, and
        the answered turns (the conversation, and what a 👍/👎 rates); the last update of `stream`."""
        update = None
        for update in self.stream(question, history, mode, k, doc_id, issuer, year, turns, generate):
            pass
        return update

    def stream(self, question: str, history: list, mode: str, k: int, doc_id: str, issuer: str,
               year: str, turns: list, generate: bool = False) -> Iterator[tuple]:
        """The page's handler: `respond`'s outputs, once; with the written-answer switch on, first the text as the
        model writes it (at most every STREAM_INTERVAL, marked as not checked yet), then the checked reply. The
        answer runs in a worker thread (run_answer keeps the budget), which finishes even when the page goes away."""
        with user_errors():
            resolved, index = resolve_mode(mode), self.current.get()
            turns = list(turns or [])
            k, filters = parse_k(k), build_filters(doc_id, issuer, year)
            if not (as_switch(generate) and self.llm is not None):
                yield self.reply(index, run_answer(index, question, k, resolved, filters, history=turns), resolved,
                                 history, turns)
                return
            pieces: queue.SimpleQueue = queue.SimpleQueue()
            outcome: dict[str, Any] = {}
            done = object()

            def work() -> None:
                try:
                    outcome["answer"] = run_answer(index, question, k, resolved, filters, history=list(turns),
                                                   generate=True, llm=self.llm, on_text=pieces.put)
                except Exception as exc:  # raised again in the handler, which turns it into a message
                    outcome["error"] = exc
                finally:
                    pieces.put(done)

            threading.Thread(target=work, name="written-answer", daemon=True).start()
            written, shown_text, last = "", "", 0.0
            finished = False
            while not finished:
                try:
                    piece = pieces.get(timeout=STREAM_INTERVAL)
                except queue.Empty:
                    piece = None
                while piece is not None:  # everything that arrived meanwhile
                    if piece is done:
                        finished = True
                        break
                    written += piece
                    try:
                        piece = pieces.get_nowait()
                    except queue.Empty:
                        piece = None
                if not finished and written != shown_text and time.monotonic() - last >= STREAM_INTERVAL:
                    shown_text, last = written, time.monotonic()
                    partial = list(history or []) + [{"role": "assistant", "content": writing_markdown(written)}]
                    yield partial, writing_sources_html(), gr.skip(), gr.skip(), gr.skip()
            if "error" in outcome:
                raise outcome["error"]
            yield self.reply(index, outcome["answer"], resolved, history, turns)

    def reply(self, index: Index, answer: Answer, mode: str, history: list, turns: list) -> tuple:
        """The outputs of an answered question: the chat with the reply, sources, first document, cites, turns."""
        history = list(history or []) + [
            {"role": "assistant", "content": answer_markdown(answer) + answer_footer(answer, mode)}]
        cites = [cite_state(hit) for hit in answer.citations]
        view = render_cite(index, cites, 0) if answer.found and cites else empty_document_html()
        turns = list(turns) + [turn_state(answer, len(history) - 1, cites)]
        return history, sources_html(answer), view, cites, turns

    def rate(self, turns: list, evt: gr.LikeData) -> list:
        """Record a 👍/👎 on a reply in the feedback store; the other thumb replaces it, the same one withdraws it."""
        with user_errors():
            turn = next((t for t in reversed(turns or []) if t["message"] == evt.index), None)
            if turn is None:
                return turns
            index = self.current.get()
            store = FeedbackStore(index.index_dir)  # the file appears with the first rating
            previous, turn["feedback"] = turn["feedback"], None
            if evt.liked is True or evt.liked is False:
                turn["feedback"] = store.record(
                    turn["question"], turn["answer"] or None, "up" if evt.liked else "down",
                    completed_question=turn["completed_question"], citations=turn["citations"],
                    generation=index.generation.name, replaces=previous)
            elif previous is not None:
                store.withdraw(previous)
            return turns

    def comment(self, turns: list, rating: str | None, comment: str, correction: str) -> tuple:
        """A comment or a corrected answer on the last reply, stored with its rating (a correction alone means 👎);
        it replaces the thumb given before, so the latest word on an answer is the one exported."""
        with user_errors():
            turn = next((t for t in reversed(turns or [])), None)
            if turn is None:
                raise user_error("Ask a question first: a comment belongs to an answer", "No answer yet")
            comment, correction = (comment or "").strip() or None, (correction or "").strip() or None
            chosen = RATING_CHOICES.get(rating or "") or ("down" if correction else None)
            if chosen is None:
                raise user_error("Choose 👍 or 👎 (a correction alone counts as 👎)", "No rating")
            index = self.current.get()
            turn["feedback"] = FeedbackStore(index.index_dir).record(
                turn["question"], turn["answer"] or None, chosen, comment=comment, correction=correction,
                completed_question=turn["completed_question"], citations=turn["citations"],
                generation=index.generation.name, replaces=turn["feedback"])
            return turns, f"Thank you: recorded for 「{markdown_escape(shorten(turn['question'], 60))}」 谢谢，已记录", "", ""

    def open_source(self, cites: list, evt: gr.EventData) -> str:
        """The whole document of the clicked source, its paragraph marked and scrolled into view."""
        data = evt._data if isinstance(getattr(evt, "_data", None), dict) else {}
        with user_errors():
            return render_cite(self.current.get(), cites, data.get("cite"))

    # ---- documents from the browser -------------------------------------------------------------
    def upload(self, paths: list | None, doc_id: str, issuer: str, year: str,
               progress=gr.Progress(track_tqdm=True)) -> tuple:
        """Add the files the page uploaded; the build's progress (reading, chunking, embedding) shows meanwhile."""
        with user_errors():
            if not paths and not self.library.refusal():
                raise user_error(f"Choose files first ({' '.join(SUFFIXES)})", "No files")
            progress(0, desc="reading, chunking and embedding 读取、切分、向量化")
            with ExitStack() as files:
                opened = [(os.path.basename(str(p)), files.enter_context(open(p, "rb"))) for p in paths or []]
                change = refused_or(lambda: self.library.add(opened, progress=True))
            return self.after(change, doc_id, issuer, year)

    def delete(self, file_id: str | None, doc_id: str, issuer: str, year: str) -> tuple:
        """Delete the uploaded file picked in the panel and rebuild."""
        with user_errors():
            if not file_id and not self.library.refusal():
                raise user_error("Pick an uploaded document to delete first", "No document")
            return self.after(refused_or(lambda: self.library.delete(file_id)), doc_id, issuer, year)

    def after(self, change: Change | str, *filters: str) -> tuple:
        """The panel's report and the page's state; the file box is emptied after a build, kept after a refusal
        (another build running) so the files can be added again with one click."""
        if isinstance(change, Change):
            return (change_html(change), None, *self.page_state(*filters))
        return (notice_html(change), gr.skip(), *self.page_state(*filters))

    def page_state(self, doc_id: str = "", issuer: str = "", year: str = "") -> tuple:
        """Header, filter dropdowns (keeping a choice that still exists) and delete choices of the index now
        served; also run on page load, so a page opened before an upload catches up."""
        index = self.current.get()
        dropdowns = [gr.Dropdown(choices=choices, value=value if value in [v for _, v in choices] else "")
                     for choices, value in zip(filter_choices(index), (doc_id, issuer, year))]
        return (header_html(index), *dropdowns, gr.Dropdown(choices=deletable(index), value=None))


def refused_or(action: Callable[[], Change]) -> Change | str:
    """The change, or the refusal (no corpus folder, another build running, a document outside uploads/) to show
    in the panel instead of an error."""
    try:
        return action()
    except UploadRefused as exc:
        return str(exc)


def find_document(index: Index, doc_id: Any) -> Document:
    """Only ids in the index resolve; a bad one is quoted cut and escaped, so the reply and the log stay short."""
    doc_id = "" if doc_id is None else doc_id
    try:
        return index.document(doc_id)  # refuses an id that is not text too
    except RagError:
        raise RagError(f"no document {shown(doc_id)} in this index; /documents lists the ids") from None


def render_cite(index: Index, cites: list, number: Any) -> str:
    """Document view for citation `number` (0-based) of the current answer."""
    if not isinstance(number, int) or not cites or not 0 <= number < len(cites):
        return empty_document_html()
    cite = cites[number]
    doc = index.document(cite["doc_id"])
    return document_html(doc, cite["start"], cite["end"], cite["highlights"])


def document_list(index: Index) -> list[dict]:
    """The /documents rows of the chat's API and of the REST API."""
    counts = index.chunk_counts()
    return [document_summary(d, counts.get(d.doc_id, 0)) for d in index.documents()]


def cite_state(hit: Hit) -> dict:
    """What the page remembers about a citation to open it later (no text; the index has it)."""
    return {"doc_id": hit.doc_id, "start": hit.start, "end": hit.end, "highlights": [list(s) for s in hit.highlights]}


def turn_state(answer: Answer, message: int, cites: list[dict]) -> dict:
    """One answered turn: a turn of `history` for the next question ({"question", "answer", "doc_id"}), the chat
    message it is shown in, what a rating stores, and that rating's id."""
    return {"question": answer.question, "answer": answer.text if answer.found else "",
            "doc_id": cites[0]["doc_id"] if answer.found and cites else "", "message": message,
            "completed_question": answer.completed_question or answer.question,
            "citations": [{key: c[key] for key in ("doc_id", "start", "end")} for c in cites], "feedback": None}


def header_html(index: Index) -> str:
    """Title line with the size of the index."""
    docs = len(index.documents())
    chunks = len(index.chunks)
    return (f'<div id="app-header"><h1>政务答复问答 · Government Reply Q&amp;A</h1>'
            f'<span class="stats">{plural(docs, "document")} · {plural(chunks, "paragraph")} · every answer quotes '
            f'the documents, with its sources · 答案均引自原文并注明出处</span></div>')


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def documents_panel(index: Index, library: Library) -> SimpleNamespace:
    """The "Add documents 添加文档" accordion above the chat: files to add, the build's report, and the uploads
    that can be deleted; a server that cannot take uploads shows why, and nothing else."""
    refusal = library.refusal()
    with gr.Accordion("Add documents 添加文档", open=False, elem_id="add-docs"):
        files = gr.File(file_count="multiple", file_types=list(SUFFIXES), type="filepath", height=112,
                        label=f"Files 文件 (≤ {mib(MAX_FILE_BYTES)} each)", visible=refusal is None,
                        elem_id="upload-files")
        add = gr.Button("Add to the index 加入索引", variant="primary", size="md", visible=refusal is None,
                        elem_id="add-files")
        report = gr.HTML(notice_html(refusal) if refusal else UPLOAD_HINT, elem_id="upload-report")
        with gr.Row(equal_height=False, visible=refusal is None, elem_id="delete-row"):
            choice = gr.Dropdown(deletable(index), value=None, label="Delete an upload 删除上传的文档",
                                 scale=4, elem_id="delete-choice")
            delete = gr.Button("Delete 删除", variant="stop", size="md", scale=1, min_width=120, elem_id="delete-doc")
    return SimpleNamespace(files=files, add=add, report=report, choice=choice, delete=delete)


RATING_CHOICES = {"👍 right 正确": "up", "👎 wrong 错误": "down"}


def comment_panel() -> SimpleNamespace:
    """Under the chat: a comment or a corrected answer on the last reply (the thumbs on a reply rate it alone)."""
    with gr.Accordion("Comment or correct the last answer 评论或更正上一条答案", open=False, elem_id="comment-panel"):
        rating = gr.Radio(list(RATING_CHOICES), value=None, show_label=False, elem_id="comment-rating")
        comment = gr.Textbox(label="Comment 评论", lines=1, max_lines=4, max_length=5000, elem_id="comment-text")
        correction = gr.Textbox(label="Correct answer 正确答案", lines=1, max_lines=4, max_length=5000,
                                elem_id="comment-correction")
        send = gr.Button("Send 提交", size="md", elem_id="comment-send")
        status = gr.Markdown("", elem_id="comment-status")
    return SimpleNamespace(rating=rating, comment=comment, correction=correction, send=send, status=status)


def create_app(index: Index | CurrentIndex, api_key: str | None = None,
               corpus_dir: str | os.PathLike | None = None, llm: "LLMConfig | None" = None) -> gr.Blocks:
    """The page and the API endpoints over the served index; `api_key` guards the REST API that launch mounts;
    `corpus_dir` (the folder the index is built from) takes the documents added from the browser or the API;
    `llm` (rag.generation.LLMConfig) is the language model behind the "Written answer" switch, shown only with one."""
    from ui.rest import create_api  # it imports this module

    current = CurrentIndex.of(index)
    library = Library(current, corpus_dir)
    chat = WebChat(current, library, llm)
    index = current.get()
    doc_choices, issuer_choices, year_choices = filter_choices(index)
    with gr.Blocks(title="政务答复问答 · Gov Reply Q&A", fill_width=True) as demo:
        header = gr.HTML(header_html(index), js_on_load=None)
        cites = gr.State([])
        turns = gr.State([])
        pending = gr.State("")
        with gr.Row(equal_height=True, elem_id="toolbar"):
            # the switch takes its room from the widest fields; without a model the toolbar is as it always was
            narrow = (360, 180, 190, 150, 130) if llm is not None else (360, 180, 220, 170, 130)
            mode = gr.Radio(MODES, value="hybrid", label="Retrieval 检索方式", scale=4, min_width=narrow[0],
                            elem_id="mode")
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Sources 出处数 (k)", scale=2,
                          min_width=narrow[1], elem_id="k")
            doc_filter = gr.Dropdown(doc_choices, value="", label="Document 文档", filterable=True, scale=4,
                                     min_width=narrow[2], elem_id="doc-filter")
            issuer_filter = gr.Dropdown(issuer_choices, value="", label="Issuer 发布单位", scale=3,
                                        min_width=narrow[3], elem_id="issuer-filter")
            year_filter = gr.Dropdown(year_choices, value="", label="Year 年份", scale=1, min_width=narrow[4],
                                      elem_id="year-filter")
            generate = None
            if llm is not None:  # no model, no switch: the page is the extractive one
                generate = gr.Checkbox(False, label="Written answer 模型撰写", scale=2, min_width=180,
                                       elem_id="generate")
        with gr.Row(equal_height=False, elem_id="panels"):
            with gr.Column(scale=12, min_width=420):
                panel = documents_panel(index, library)
                chatbot = gr.Chatbot(label="Chat 对话", show_label=False, height="calc(100vh - 528px)", min_height=240,
                                     latex_delimiters=[], elem_id="chat", buttons=["copy"], layout="bubble",
                                     feedback_options=("Like", "Dislike"),  # 👍/👎, recorded by WebChat.rate
                                     placeholder="Ask about the indexed government replies, in Chinese or English. "
                                                 "可用中文或英文提问。")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(show_label=False, placeholder="输入问题 / Ask a question…", lines=1,
                                          max_lines=4, scale=8, elem_id="question", autofocus=True)
                    ask_button = gr.Button("提问 Ask", variant="primary", scale=1, min_width=112, elem_id="ask")
                examples = gr.Examples([[q] for q in EXAMPLES], inputs=[question], label="Examples 示例",
                                       api_visibility="private", elem_id="examples")
                remark = comment_panel()
            with gr.Column(scale=9, min_width=320):
                sources = gr.HTML(sources_html(None), js_on_load=SOURCES_JS, elem_id="sources")
            with gr.Column(scale=10, min_width=340):
                viewer = gr.HTML(empty_document_html(), js_on_load=DOCUMENT_JS, elem_id="document")

        answer_inputs = [pending, chatbot, mode, k, doc_filter, issuer_filter, year_filter, turns]
        answer_inputs += [generate] if generate is not None else []
        answer_outputs = [chatbot, sources, viewer, cites, turns]
        for trigger in (question.submit, ask_button.click):
            trigger(chat.accept, [question, chatbot], [chatbot, question, pending], concurrency_limit=None,
                    api_visibility="private", show_progress="hidden").success(
                chat.stream, answer_inputs, answer_outputs, concurrency_id="answer",
                concurrency_limit=CONCURRENCY, api_visibility="private")
        examples.load_input_event.then(
            chat.accept, [question, chatbot], [chatbot, question, pending], concurrency_limit=None,
            api_visibility="private", show_progress="hidden").success(
            chat.stream, answer_inputs, answer_outputs, concurrency_id="answer",
            concurrency_limit=CONCURRENCY, api_visibility="private")
        sources.click(chat.open_source, [cites], [viewer], api_visibility="private", concurrency_limit=None)
        chatbot.like(chat.rate, [turns], [turns], api_visibility="private", concurrency_limit=None)
        remark.send.click(chat.comment, [turns, remark.rating, remark.comment, remark.correction],
                          [turns, remark.status, remark.comment, remark.correction], api_visibility="private",
                          concurrency_limit=None)
        chatbot.clear(lambda: [], None, [turns], api_visibility="private", concurrency_limit=None)  # a new conversation
        filters = [doc_filter, issuer_filter, year_filter]
        page_state = [header, *filters, panel.choice]
        changed = [panel.report, panel.files, *page_state]
        # one build of the page's at a time (the next waits in the queue); any other build is refused by its lock
        panel.add.click(chat.upload, [panel.files, *filters], changed, show_progress_on=[panel.report],
                        concurrency_id="build", concurrency_limit=1, api_visibility="private")
        panel.delete.click(chat.delete, [panel.choice, *filters], changed, show_progress_on=[panel.report],
                           concurrency_id="build", concurrency_limit=1, api_visibility="private")
        demo.load(chat.page_state, None, page_state, api_visibility="private", concurrency_limit=None,
                  show_progress="hidden")

        gr.api(chat.ask, api_name="ask", concurrency_id="answer", concurrency_limit=CONCURRENCY)
        gr.api(chat.document, api_name="document", concurrency_limit=None)
        gr.api(chat.documents, api_name="documents", concurrency_limit=None)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=None)
    demo.rest_api = create_api(current, api_key, library, llm)
    demo.library = library
    return demo


def body_limits(demo: gr.Blocks) -> dict[str, int]:
    """The upload routes' own body cap when the server takes uploads; every other route keeps MAX_BODY_BYTES."""
    from ui.rest import PREFIX

    library = getattr(demo, "library", None)
    if library is None or library.refusal() is not None:
        return {}
    return {UPLOAD_ROUTE: MAX_UPLOAD_BYTES, f"{PREFIX}/documents": MAX_UPLOAD_BYTES}


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, prevent_thread_lock: bool = False,
           quiet: bool = False):
    """Start the server with the page's theme and CSS (no share link, no extra file access, bodies capped on
    every route, the upload routes at the upload limit, the REST API of create_app mounted at /api/v1 ahead of
    Gradio's routes)."""
    from ui.rest import PREFIX

    routes = [Mount(PREFIX, app=demo.rest_api)] if getattr(demo, "rest_api", None) else []
    theme = gr.themes.Default(primary_hue="blue", font=FONTS, font_mono=("ui-monospace", "monospace"))
    return demo.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, share=False,
                       quiet=quiet, theme=theme, css=CSS, footer_links=["api"], show_error=False,
                       ssr_mode=False, mcp_server=False, num_workers=0, max_file_size=MAX_FILE_BYTES,
                       app_kwargs={"middleware": [Middleware(BodyLimit, max_bytes=MAX_BODY_BYTES,
                                                             limits=body_limits(demo))],
                                   "routes": routes})


def serve(corpus_dir: str = "corpus", index_dir: str = "index", host: str = "127.0.0.1", port: int = 7860,
          model: str | None = None, api_key: str | None = None, uploads: bool = True,
          llm: "LLMConfig | None" = None) -> None:
    """Build the index when missing (with progress), load it, warm the model up, and serve the web chat and the
    REST API (guarded by `api_key`, else $RAG_API_KEY, when either is set); documents added from the browser go
    into `corpus_dir` unless `uploads` is off (the page itself has no key); `llm` is the language model of the
    "Written answer" switch and the APIs' `generate` (None: no switch, extracted answers only)."""
    api_key = api_key or os.environ.get("RAG_API_KEY") or None
    if not index_exists(index_dir):
        print(f"no index in {index_dir}: building it from {corpus_dir} (first run only)", flush=True)
        build_index(corpus_dir, index_dir, model=model, progress=True)
    index = load_index(index_dir, model=model)
    print(f"loaded {plural(len(index.documents()), 'document')}, {plural(len(index.chunks), 'paragraph')} "
          f"from {index_dir}", flush=True)
    index.search("warm up 预热", k=1)  # loads the embedding model before the first visitor waits for it
    print(f"REST API at /api/v1 ({'Authorization: Bearer <key> required' if api_key else 'no key'}); "
          "docs at /api/v1/docs", flush=True)
    if llm is not None:
        where = urlsplit(llm.base_url)
        print(f"written answers by {llm.model or 'the first model listed'} at {where.scheme}://{where.hostname}"
              f"{f':{where.port}' if where.port else ''}{where.path} (the passages of each written answer are sent "
              "there)", flush=True)
    launch(create_app(index, api_key=api_key, corpus_dir=corpus_dir if uploads else None, llm=llm),
           host=host, port=port)
