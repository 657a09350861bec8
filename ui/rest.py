"""The REST API beside the web chat: plain JSON at /api/v1, described by OpenAPI, over the same loaded Index.

ui.app.launch mounts it on the Gradio server. With a key set, every route but the docs needs
`Authorization: Bearer <key>`. Errors are {"error": message} with 400 (bad input), 401, 403 (a delete outside
uploads/, a server without a corpus folder), 404 (unknown document or route), 409 (another build running), 413
(body over the cap, from ui.limits) or 500. Searches, answers and builds run in worker threads (searches and
answers at most ui.app.CONCURRENCY at once), so the event loop keeps serving the page meanwhile. Every request
reads the served index once (ui.uploads.CurrentIndex), so an upload's build never changes it mid-request.
`POST /answer` with `"generate": true` has the served language model (if any) write the answer, checked against the
passages (not streamed: the reply comes when the check is done).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time
from html import escape
from typing import TYPE_CHECKING, Any, Callable, Literal

from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from rag.feedback import FeedbackStore, Rating
from rag.qa.conversation import MAX_TURN_CHARS, MAX_TURNS
from rag.search.index import MAX_QUESTION_INPUT, Index, check_question
from rag.types import RagError, shown
from ui.app import ANSWER_SLOTS, CONCURRENCY, DEFAULT_K, MAX_K, MODE_ALIASES, document_list, resolve_mode, run_answer
from ui.render import answer_json, citation_json
from ui.uploads import MAX_FILE_BYTES, MAX_FILES, MAX_UPLOAD_BYTES, CurrentIndex, Library, UploadRefused

if TYPE_CHECKING:
    from rag.generation import LLMConfig

PREFIX = "/api/v1"
QUESTION = "2023年石家庄新增了多少家高新技术企业？"
Mode = Literal[tuple(MODE_ALIASES)]  # the web chat's words and the index's


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class Turn(Strict):
    """One earlier turn of the conversation."""

    question: str = Field(max_length=MAX_TURN_CHARS)
    answer: str | None = Field(None, max_length=MAX_TURN_CHARS, description="the answer shown for it")
    doc_id: str | None = Field(None, max_length=MAX_TURN_CHARS,
                               description="the document it cited first (a later 这份答复 keeps to it)")


class SearchRequest(Strict):
    question: str = Field(description=f"at most {MAX_QUESTION_INPUT:,} characters", examples=[QUESTION])
    mode: Mode = Field("hybrid", description="hybrid = keyword + semantic; keyword = bm25; semantic = dense")
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K, strict=True, description="number of paragraphs")
    filters: dict[str, Any] = Field(default_factory=dict, examples=[{"year": 2024}],
                                    description="doc_id, path_prefix, issuer, year, date_from, date_to: "
                                                "text, a whole number or a list of them")


class AnswerRequest(SearchRequest):
    history: list[Turn] = Field(default_factory=list, max_length=MAX_TURNS,
                                description=f"earlier turns, oldest first (the latest {MAX_TURNS} at most); "
                                            "a follow-up question is completed from them")
    generate: bool = Field(False, strict=True,
                           description="true: the server's language model writes the answer from the k passages "
                                       "and every sentence is checked against them (generated, verified, "
                                       "unsupported, statements, extractive); on any fault, or when the server has "
                                       "no model, the extracted answer comes with the reason in `note`")


class Citation(BaseModel):
    n: int
    doc_id: str
    title: str
    issuer: str
    date: str
    section: str
    start: int = Field(description="offset of the paragraph in the document text")
    end: int
    score: float
    text: str
    highlights: list[tuple[int, int]] = Field(description="answer spans, offsets into text")


class SearchResponse(BaseModel):
    question: str
    mode: str
    elapsed_ms: float
    hits: list[Citation]


class Support(BaseModel):
    n: int = Field(description="the citation")
    start: int = Field(description="offsets into that citation's text")
    end: int
    text: str


class StatementCheck(BaseModel):
    text: str = Field(description="one sentence of the written answer")
    start: int = Field(description="offsets into the written answer")
    end: int
    citations: list[int] = Field(description="the [n] markers it carries")
    supported: bool = Field(description="every figure, date, number and quote in it stands in the passages it cites")
    problems: list[str] = Field(description="why not, e.g. '1234家 is not in [1]' or 'no citation'")
    claims: list[str] = Field(description="what it was checked for")
    support: list[Support] = Field(description="where the cited passages back it")


class AnswerResponse(BaseModel):
    question: str
    completed_question: str = Field(description="the question actually searched (a follow-up completed)")
    answer: str | None = Field(description="the answer, or the not-found message when found is false")
    answer_with_citations: str | None
    found: bool
    exact: bool = Field(description="true: a value taken verbatim; false: the source sentence that says it")
    kind: str
    mode: str
    elapsed_ms: float
    citations: list[Citation] = Field(description="for a written answer: the passages it was written from, "
                                                   "numbered as its [n] markers; highlights back its statements")
    generated: bool = Field(False, description="true: written by the language model (asked with generate)")
    note: str = Field("", description="why the written answer is not shown (no model, down, timeout, refusal, …); "
                                      "then the answer is the extracted one")
    verified: bool | None = Field(None, description="written answers: every statement backed by its passages")
    unsupported: list[str] | None = Field(None, description="written answers: the figures or sentences no cited "
                                                            "passage backs")
    unsupported_spans: list[tuple[int, int]] | None = Field(None, description="written answers: where they stand "
                                                                              "in `answer`")
    statements: list[StatementCheck] | None = Field(None, description="written answers: each sentence's check")
    extractive: "AnswerResponse | None" = Field(None, description="written answers: the extracted answer, to show "
                                                                  "beside one that is not verified")


AnswerResponse.model_rebuild()


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    issuer: str
    date: str
    chunks: int


class DocumentView(BaseModel):
    doc_id: str
    title: str
    meta: dict[str, Any]
    text: str = Field(description="the text as stored; citation offsets index into it")


class Cited(Strict):
    doc_id: str
    start: int
    end: int


class FeedbackRequest(Strict):
    question: str
    answer: str | None
    rating: Rating
    comment: str | None = None
    correction: str | None = Field(None, description="the right answer; it becomes the expected answer of an eval case")
    completed_question: str | None = None
    citations: list[Cited] = Field(default_factory=list)


class FeedbackStored(BaseModel):
    id: int
    generation: str


class Skipped(BaseModel):
    file: str
    reason: str


class DocumentChange(BaseModel):
    added: list[str] = Field(description="doc ids now indexed (a spreadsheet adds one a row)")
    removed: list[str] = Field(description="doc ids no longer indexed")
    skipped: list[Skipped] = Field(description="files (or rows) not added, with the reason")
    documents: int = Field(description="documents now served")
    generation: str


class Health(BaseModel):
    status: str
    documents: int
    chunks: int
    generation: str
    model: str


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """pydantic's complaints as one line: where, and what was expected (never the value sent)."""
    parts = []
    for item in exc.errors()[:5]:
        where = ".".join(str(p)[:80] for p in item.get("loc", ()) if p != "body") or "body"
        if item.get("type") == "json_invalid":  # its loc is a character position
            where = "body"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


# Declares the key in the OpenAPI (securitySchemes); the check itself is `require_key`, which runs before the body
# is parsed.
BEARER = HTTPBearer(auto_error=False, description="the server's API key (rag serve --api-key or RAG_API_KEY)")


def require_key(api: FastAPI, api_key: str) -> None:
    """Refuse every call but the docs without `Authorization: Bearer <api_key>` (compared in constant time), before
    the route reads its body, so a call without the key is a 401 whatever it sends."""
    expected = api_key.encode()

    @api.middleware("http")
    async def key_first(request: Request, call_next):
        root = request.scope.get("root_path", "")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if request.url.path not in (root + "/openapi.json", root + "/docs") and not (
                scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)):
            return error(401, "missing or wrong API key: send the header Authorization: Bearer <key>",
                         headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)


def docs_html(schema: dict) -> str:
    """A docs page that works offline (Swagger UI would load its scripts from a CDN): each route and the schemas."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{escape(schema['info']['title'])}</title>",
             "<style>body{font:14px system-ui,sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;"
             "padding:8px;overflow:auto}</style>",
             f"<h1>{escape(schema['info']['title'])}</h1><p>{escape(schema['info'].get('description', ''))}</p>",
             f"<p>Machine-readable: <a href='{PREFIX}/openapi.json'>{PREFIX}/openapi.json</a></p>"]
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            parts.append(f"<h2><code>{method.upper()} {escape(PREFIX + path)}</code></h2>"
                         f"<p>{escape(op.get('description') or op.get('summary', ''))}</p>")
    schemas = json.dumps(schema.get("components", {}).get("schemas", {}), ensure_ascii=False, indent=1)
    parts.append(f"<h2>Schemas</h2><pre>{escape(schemas)}</pre>")
    return "".join(parts)


def create_api(index: Index | CurrentIndex, api_key: str | None = None, library: Library | None = None,
               llm: "LLMConfig | None" = None) -> FastAPI:
    """The /api/v1 application over the served index (mounted by ui.app.launch); `library` takes uploads; `llm`
    writes the answers asked with `generate`."""
    api = FastAPI(title="Government Reply Q&A · REST API", version="1", openapi_url="/openapi.json",
                  docs_url=None, redoc_url=None, dependencies=[Depends(BEARER)] if api_key else [],
                  description="Extractive answers with cited source spans over the indexed government replies. "
                              "Errors are {\"error\": message}.")
    if api_key:
        require_key(api, api_key)
    slots = asyncio.Semaphore(CONCURRENCY)
    current = CurrentIndex.of(index)
    store = FeedbackStore(current.get().index_dir)

    def within_budget(fn: Callable, *args, **kwargs):
        with ANSWER_SLOTS:  # shared with the chat: at most CONCURRENCY answers run at once in the whole server
            return fn(*args, **kwargs)

    async def threaded(fn: Callable, *args, **kwargs):
        """Run fn in a worker thread, at most CONCURRENCY at once (the rest wait their turn)."""
        async with slots:
            return await run_in_threadpool(fn, *args, **kwargs)

    async def heavy(fn: Callable, *args, **kwargs):
        """A search in a worker thread, within the server's answer budget (run_answer keeps it itself)."""
        return await threaded(within_budget, fn, *args, **kwargs)

    api.add_exception_handler(RagError, lambda request, exc: error(400, str(exc)))
    api.add_exception_handler(UploadRefused, lambda request, exc: error(exc.status, str(exc)))
    api.add_exception_handler(RequestValidationError, lambda request, exc: error(400, validation_message(exc)))
    api.add_exception_handler(HTTPException, lambda request, exc: error(exc.status_code, str(exc.detail),
                                                                        exc.headers))
    # a bug: the client gets the error shape, the server log the one trace (Starlette re-raises it to uvicorn)
    api.add_exception_handler(Exception, lambda request, exc: error(
        500, f"internal error ({type(exc).__name__}); see the server log"))

    @api.post("/search", response_model=SearchResponse)
    async def search(body: SearchRequest) -> dict:
        """The k best paragraphs for a question, best first (no answer extracted)."""
        question, mode, index = check_question(body.question), resolve_mode(body.mode), current.get()

        def timed() -> tuple[list, float]:
            started = time.perf_counter()
            hits = index.search(question, k=body.k, mode=mode, filters=body.filters)
            return hits, round((time.perf_counter() - started) * 1000, 1)

        hits, elapsed = await heavy(timed)
        return {"question": question, "mode": mode, "elapsed_ms": elapsed,
                "hits": [citation_json(n, hit) for n, hit in enumerate(hits, 1)]}

    @api.post("/answer", response_model=AnswerResponse)
    async def answer(body: AnswerRequest) -> dict:
        """An extractive answer with highlighted citations, or an honest not-found; `history` carries the
        conversation so a follow-up (那2022年呢？) is completed from it; `generate` has the server's language
        model write it, each sentence checked against the passages it cites."""
        question, mode = check_question(body.question), resolve_mode(body.mode)
        result = await threaded(run_answer, current.get(), question, body.k, mode, body.filters,
                             history=[turn.model_dump() for turn in body.history], generate=body.generate, llm=llm)
        return answer_json(result, mode)

    @api.get("/documents", response_model=list[DocumentSummary])
    async def documents() -> list[dict]:
        """Every indexed document: doc_id, title, issuer, date and number of paragraphs."""
        return document_list(current.get())

    @api.get("/documents/{doc_id:path}", response_model=DocumentView)
    async def document(doc_id: str) -> dict:
        """One indexed document by its id (URL-encode '#' as %23); only ids in the index resolve, never a path."""
        try:
            doc = current.get().document(doc_id)
        except RagError:
            raise HTTPException(404, f"no document {shown(doc_id)} in this index; GET {PREFIX}/documents lists "
                                     "the ids") from None
        return {"doc_id": doc.doc_id, "title": doc.title, "meta": doc.meta, "text": doc.text}

    @api.post("/feedback", response_model=FeedbackStored, status_code=201)
    async def feedback(body: FeedbackRequest) -> dict:
        """Record a 👍 (up) or 👎 (down) on an answer, with an optional comment or corrected answer."""
        generation = current.get().generation.name
        row = await run_in_threadpool(store.record, **body.model_dump(), generation=generation)
        return {"id": row, "generation": generation}

    @api.get("/health", response_model=Health)
    async def health() -> dict:
        """The index being served: documents, paragraphs, generation and embedding model."""
        index = current.get()
        return {"status": "ok", "documents": len(index.documents()), "chunks": len(index.chunks),
                "generation": index.generation.name, "model": str(index.manifest.get("model", ""))}

    add_document_routes(api, library or Library(current, None))

    async def docs(request: Request) -> HTMLResponse:
        """The docs page of the routes above (no key needed: it holds no data)."""
        return HTMLResponse(docs_html(api.openapi()))

    api.add_route("/docs", docs, include_in_schema=False)  # no key needed: it holds no data
    return api


def add_document_routes(api: FastAPI, library: Library) -> None:
    """POST /documents (upload) and DELETE /documents/{doc_id} (uploads only): the browser panel's rules, from a
    script; each builds in a worker thread, one build at a time."""

    @api.post("/documents", response_model=DocumentChange)
    async def add_documents(files: list[UploadFile] = File(
            description=f"one or more files (multipart field `files`): at most {MAX_FILES}, "
                        f"{MAX_FILE_BYTES:,} bytes each, {MAX_UPLOAD_BYTES:,} bytes in all")) -> dict:
        """Add documents: saved under uploads/ of the corpus folder and indexed as `rag build` does, searchable
        when the reply comes; files that cannot be read are not kept and are listed with the reason."""
        change = await run_in_threadpool(library.add, [(f.filename or "upload", f.file) for f in files])
        return change.json()

    @api.delete("/documents/{doc_id:path}", response_model=DocumentChange)
    async def delete_document(doc_id: str) -> dict:
        """Delete an uploaded document (uploads/…; the file id of a spreadsheet removes all its rows) and rebuild;
        documents of the corpus folder itself are refused with 403."""
        return (await run_in_threadpool(library.delete, doc_id)).json()
