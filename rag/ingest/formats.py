"""Readers for .html/.htm, .docx, .pdf and tabular .xlsx/.csv/.jsonl files; each returns a LoadResult.

Conventions (docs/ARCHITECTURE.md): a page's extracted text is stored unchanged in Document.text;
one row of a tabular file is one Document with doc_id "<relpath>#<id value>".
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import re
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any, Callable, Iterator

from rag.ingest.reading import SIDECAR_SUFFIX, LoadResult, SkippedFile, Unreadable, decode_bytes, make_document
from rag.ingest.metadata import find_date, find_title, first_sentence, normalize_date, parse_reply
from rag.types import Document, RagError

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted Office files (and legacy .doc/.xls)

# ---------------------------------------------------------------- tables as text


def _looks_like_header(row: list[str]) -> bool:
    """A first table row of short, non-numeric labels, one per column."""
    return len(row) >= 2 and all(c and len(c) <= 30 and not re.fullmatch(r"[\d.,%\s-]+", c) for c in row)


def table_lines(rows: list[list[str]]) -> list[str]:
    """One line per data row, each value next to its column header ("指标: 新增高企; 数量: 360家")."""
    rows = [[" ".join(c.split()) for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return []
    if len(rows) >= 2 and _looks_like_header(rows[0]):
        header, body = rows[0], rows[1:]
        return ["; ".join(f"{h}: {v}" if h else v for h, v in zip_longest(header, row, fillvalue="") if v)
                for row in body]
    return ["; ".join(c for c in row if c) for row in rows]


# ---------------------------------------------------------------- tabular mapping


@dataclass
class TableMapping:
    """Which columns of a table hold the id, text, title, date and extra metadata."""

    text: str
    id: str | None = None
    title: str | None = None
    date: str | None = None
    meta: dict[str, str] = field(default_factory=dict)  # meta key -> column
    sheet: str | None = None


def parse_mapping(data: dict[str, Any]) -> TableMapping:
    """Validate a mapping dict ({"id", "text", "title", "date", "meta", "sheet"}) into a TableMapping."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not data["text"]:
        raise RagError('a tabular mapping needs at least {"text": "<column>"} (and usually "id")')
    meta = data.get("meta") or {}
    if isinstance(meta, list):
        meta = {str(col): str(col) for col in meta}
    if not isinstance(meta, dict):
        raise RagError('mapping "meta" must be a list of columns or an object {meta key: column}')
    return TableMapping(
        text=data["text"], id=data.get("id"), title=data.get("title"), date=data.get("date"),
        meta={str(k): str(v) for k, v in meta.items()}, sheet=data.get("sheet"),
    )


def load_mapping(path: str | Path) -> dict[str, Any]:
    """Read and check a mapping JSON file (e.g. corpora/tipdm.rag.json) for load_corpus(mapping=...)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RagError(f"cannot read mapping {path}: {exc}") from exc
    parse_mapping(data)
    return data


_AUTO_COLUMNS = {
    "id": ["id", "docid", "doc_id", "编号", "序号", "留言编号"],
    "text": ["text", "content", "body", "正文", "内容", "答复意见", "答复内容", "回复内容"],
    "title": ["title", "标题", "主题", "题目", "留言主题"],
    "date": ["date", "time", "日期", "时间", "发布时间", "发布日期", "答复时间"],
}
_AUTO_KEYWORDS = {"id": "编号", "text": "正文", "title": "标题", "date": "日期"}


def _auto_column(columns: list[str], role: str) -> str | None:
    """The first column whose name is an obvious name for `role` (exact, then containing a keyword)."""
    folded = {c.strip().casefold(): c for c in columns}
    for name in _AUTO_COLUMNS[role]:
        if name in folded:
            return folded[name]
    keyword = _AUTO_KEYWORDS[role]
    return next((c for c in columns if keyword in c), None)


def detect_mapping(columns: list[str]) -> TableMapping:
    """Guess the mapping from obvious column names; the text column is required.

    Every other named column is kept as metadata under its own name, so nothing in the table is lost
    (e.g. the message 留言详情 beside the reply 答复意见).
    """
    text = _auto_column(columns, "text")
    if text is None:
        raise Unreadable(f"no text column among {columns}: add a sidecar <file>{SIDECAR_SUFFIX} "
                         'such as {"id": "...", "text": "..."}')
    found = {role: _auto_column(columns, role) for role in ("id", "title", "date")}
    used = {text, *found.values()}
    meta = {c: c for c in columns if c and c not in used}
    return TableMapping(text=text, meta=meta, **found)


def sidecar_of(path: Path) -> Path | None:
    """The `<file>.rag.json` beside a table, if there is one; a link to a file in another folder is not read."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.exists():
        return None
    if sidecar.is_symlink() and os.path.dirname(os.path.realpath(sidecar)) != os.path.realpath(path.parent):
        raise Unreadable(f"{sidecar.name} is a link to a file outside its folder; copy the mapping there instead")
    return sidecar


def _resolve_mapping(path: Path, columns: list[str], mapping: dict | None) -> TableMapping:
    """Sidecar beside the file, else the load_corpus argument, else auto-detection."""
    sidecar = sidecar_of(path)
    if sidecar is not None:
        chosen = parse_mapping(load_mapping(sidecar))
    elif mapping:
        chosen = parse_mapping(mapping)
    else:
        return detect_mapping(columns)
    wanted = [c for c in (chosen.id, chosen.text, chosen.title, chosen.date, *chosen.meta.values()) if c]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise Unreadable(f"mapping names columns {missing} that are not in the file (columns: {columns})")
    return chosen


def _cell_text(value: Any) -> str:
    """A cell as text: integral floats lose '.0', dates become ISO, surrounding whitespace stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, _dt.datetime) else value.isoformat()
    if isinstance(value, (dict, list)):  # a nested JSONL value
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value).strip()


def _row_document(rel: str, row_no: int, row: dict[str, Any], m: TableMapping) -> Document | SkippedFile:
    """One table row → Document, or SkippedFile("file#id") when its text is empty."""
    row_id = _cell_text(row.get(m.id)) if m.id else str(row_no)
    doc_id = f"{rel}#{row_id or f'row{row_no}'}"
    if not row_id:
        return SkippedFile(doc_id, f"empty id in column '{m.id}' (row {row_no})")
    text = _cell_text(row.get(m.text))
    if not text:
        return SkippedFile(doc_id, f"empty text in column '{m.text}' (row {row_no})")
    meta: dict[str, Any] = {}
    for key, column in m.meta.items():
        value = _cell_text(row.get(column))
        if value:
            meta[key] = value
    if m.date:
        date = normalize_date(row.get(m.date))
        if date:
            meta["date"] = date
    title = _cell_text(row.get(m.title)) if m.title else ""
    return make_document(doc_id, text, title=title or first_sentence(text), meta=meta)


def rows_to_result(rel: str, path: Path, columns: list[str], rows: Iterator[tuple[int, dict]],
                   mapping: dict | None) -> LoadResult:
    """Documents for every row of a table, skipping rows with empty text or a repeated id."""
    chosen = _resolve_mapping(path, columns, mapping)
    result = LoadResult()
    seen: set[str] = set()
    for row_no, row in rows:
        item = _row_document(rel, row_no, row, chosen)
        if isinstance(item, Document) and item.doc_id in seen:
            item = SkippedFile(item.doc_id, f"duplicate id (row {row_no})")
        if isinstance(item, Document):
            seen.add(item.doc_id)
            result.documents.append(item)
        else:
            result.skipped.append(item)
    return result


def _reject_ole(path: Path, kind: str) -> None:
    """Encrypted .docx/.xlsx files are OLE containers, not zip files: say so plainly."""
    with path.open("rb") as fh:
        if fh.read(8) == OLE_MAGIC:
            raise Unreadable(f"password-protected (or legacy binary) {kind}: save it unencrypted as .{kind}")


def read_xlsx(path: Path, rel: str, mapping: dict | None = None) -> LoadResult:
    """Each row of the first (or mapped) sheet of an .xlsx workbook as one Document."""
    import openpyxl

    _reject_ole(path, "xlsx")
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet_name = (mapping or {}).get("sheet")
        sidecar = sidecar_of(path)
        if sidecar is not None:
            sheet_name = load_mapping(sidecar).get("sheet")
        if sheet_name and sheet_name not in book.sheetnames:
            raise Unreadable(f"no sheet named '{sheet_name}' (sheets: {book.sheetnames})")
        sheet = book[sheet_name] if sheet_name else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next((r for r in rows if any(v is not None for v in r)), None)
        if header is None:
            raise Unreadable("empty workbook (no rows)")
        columns = [_cell_text(v) for v in header]

        def records() -> Iterator[tuple[int, dict]]:
            for row_no, values in enumerate(rows, start=1):
                if any(v is not None for v in values):
                    yield row_no, dict(zip(columns, values))

        return rows_to_result(rel, path, columns, records(), mapping)
    finally:
        book.close()


def read_csv(path: Path, rel: str, mapping: dict | None = None) -> LoadResult:
    """Each row of a .csv file (UTF-8 with/without BOM, or GB18030) as one Document."""
    text = decode_bytes(path.read_bytes())
    if not text.strip():
        raise Unreadable("empty file (no rows)")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    records = ((n, row) for n, row in enumerate(reader, start=1) if any((v or "").strip() for v in row.values()
                                                                         if isinstance(v, str)))
    return rows_to_result(rel, path, columns, records, mapping)


def read_jsonl(path: Path, rel: str, mapping: dict | None = None) -> LoadResult:
    """Each JSON object line of a .jsonl file as one Document; bad lines are skipped, not fatal."""
    text = decode_bytes(path.read_bytes())
    bad: list[SkippedFile] = []
    objects: list[tuple[int, dict]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            bad.append(SkippedFile(f"{rel}#line{line_no}", f"invalid JSON line: {exc}"))
            continue
        if not isinstance(obj, dict):
            bad.append(SkippedFile(f"{rel}#line{line_no}", "JSON line is not an object"))
            continue
        objects.append((line_no, obj))
    if not objects and not bad:
        raise Unreadable("empty file (no JSON lines)")
    columns = list(dict.fromkeys(k for _, obj in objects for k in obj))
    result = rows_to_result(rel, path, columns, iter(objects), mapping) if objects else LoadResult()
    result.skipped[:0] = bad
    return result


# ---------------------------------------------------------------- HTML

_NEVER_TEXT = ["script", "style", "noscript", "template", "iframe", "svg", "canvas", "button", "select"]
_LAYOUT = ["nav", "header", "footer", "aside"]  # dropped by the fallback extractor only
_BLOCK_TAGS = ["p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "section",
               "article", "blockquote", "pre", "dd", "dt", "ul", "ol"]
_CONTENT_HINT = re.compile(r"content|article|detail|main|text|zoom|trs_editor|body|zw|nr", re.I)


def _data_table(table: Any) -> bool:
    """A real data table (not page layout): no nested table, short cells, at least 2×2."""
    if table.find("table"):
        return False
    rows = table.find_all("tr")
    cells = [c.get_text(" ", strip=True) for c in table.find_all(["td", "th"])]
    return len(rows) >= 2 and len(cells) >= 4 and max(map(len, cells)) <= 300


def _tables_to_lines(soup: Any) -> None:
    """Replace data tables by one paragraph per row that keeps values next to their headers."""
    for table in soup.find_all("table"):
        if not _data_table(table):
            continue
        rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["td", "th"])] for tr in table.find_all("tr")]
        new = soup.new_tag("div")
        for line in table_lines(rows):
            para = soup.new_tag("p")
            para.string = line
            new.append(para)
        table.replace_with(new)


def _visible_text(node: Any) -> str:
    """Text of a parsed HTML node with one line per block element, blank lines dropped."""
    for br in node.find_all("br"):
        br.replace_with("\n")
    for tag in node.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (line.strip() for line in node.get_text().splitlines())
    return "\n".join(line for line in lines if line)


def _html_title(soup: Any) -> str:
    """<h1>, else <title> without a trailing ' - site name'."""
    h1 = soup.find("h1")
    if h1 and h1.get_text(strip=True):
        return " ".join(h1.get_text(" ", strip=True).split())
    if soup.title and soup.title.get_text(strip=True):
        parts = re.split(r"\s+[-_|–—]\s+|_", soup.title.get_text(strip=True))
        return max(parts, key=len).strip()
    return ""


def _fallback_body(soup: Any) -> str:
    """Readability-style body: the element whose own paragraphs hold the most text, else a content-like
    container, else <body>."""
    scores: dict[int, list] = {}
    for para in soup.find_all("p"):
        entry = scores.setdefault(id(para.parent), [para.parent, 0])
        entry[1] += len(para.get_text(strip=True))
    best = max(scores.values(), key=lambda e: e[1])[0] if scores else None
    if best is None:
        hinted = [t for t in soup.find_all(["article", "main", "div", "td", "section"])
                  if _CONTENT_HINT.search(" ".join(t.get("class", [])) + " " + (t.get("id") or ""))]
        best = max(hinted, key=lambda t: len(t.get_text(strip=True)), default=None)
    return _visible_text(best or soup.body or soup)


def _trafilatura_body(html: str) -> tuple[str, str, str | None] | None:
    """(text, title, date) from trafilatura, or None when it is not installed or finds nothing."""
    try:
        from trafilatura import bare_extraction
    except ImportError:
        return None
    found = bare_extraction(html, include_tables=True, include_comments=False, favor_recall=True,
                            with_metadata=True, deduplicate=False)
    if found is None or not (found.text or "").strip():
        return None
    return found.text, found.title or "", found.date


def extract_html(html: str, use_trafilatura: bool = True) -> tuple[str, str, dict[str, str]]:
    """(article text, title, page fields such as publish_date/source) of an HTML page.

    trafilatura finds the article when it is installed; the bs4 extractor is the fallback.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(_NEVER_TEXT):
        tag.decompose()
    _tables_to_lines(soup)
    cleaned = str(soup)
    page_text = _visible_text(BeautifulSoup(cleaned, "lxml"))
    _, fields, _ = parse_reply(page_text)
    title = _html_title(soup)
    extracted = _trafilatura_body(cleaned) if use_trafilatura else None
    if extracted:
        text, title2, date = extracted
        title = title or title2
        if date and "publish_date" not in fields:
            fields["publish_date"] = normalize_date(date) or find_date(date) or ""
    else:
        for tag in soup.find_all(_LAYOUT):
            tag.decompose()
        text = _fallback_body(soup)
    page_meta = {k: v for k, v in fields.items() if k in ("publish_date", "source") and v}
    return text, title, page_meta


def read_html(path: Path, doc_id: str, mapping: dict | None = None) -> LoadResult:
    """An HTML page's article text (no navigation, scripts or page chrome) as one Document."""
    text, title, page_meta = extract_html(decode_bytes(path.read_bytes()))
    if not text.strip():
        raise Unreadable("HTML page without article text")
    if "publish_date" in page_meta:
        page_meta["date"] = page_meta["publish_date"]
    return LoadResult([make_document(doc_id, text, title=title or None, meta_defaults=page_meta)], [])


# ---------------------------------------------------------------- DOCX


def _docx_blocks(document: Any) -> Iterator[str]:
    """Paragraph texts and table-row lines in document order."""
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in document.element.body.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, document).text
        elif child.tag == qn("w:tbl"):
            rows = []
            for row in Table(child, document).rows:
                cells, seen = [], set()
                for cell in row.cells:  # merged cells come back repeated: keep each once
                    if id(cell._tc) not in seen:
                        seen.add(id(cell._tc))
                        cells.append(cell.text.strip())
                rows.append(cells)
            yield from table_lines(rows)


def read_docx(path: Path, doc_id: str, mapping: dict | None = None) -> LoadResult:
    """A .docx file's paragraphs and tables, in order, as one Document."""
    import docx

    _reject_ole(path, "docx")
    document = docx.Document(str(path))
    text = "\n".join(_docx_blocks(document))
    if not text.strip():
        raise Unreadable("empty document (no text)")
    title = find_title(text) or (document.core_properties.title or "").strip() or None
    return LoadResult([make_document(doc_id, text, title=title)], [])


# ---------------------------------------------------------------- PDF

PAGE_SEPARATOR = "\n\n"


def read_pdf(path: Path, doc_id: str, mapping: dict | None = None) -> LoadResult:
    """A PDF's text layer, pages joined by a blank line, with the offset where each page starts."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    reader = PdfReader(str(path))
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except DependencyError as exc:
            raise Unreadable(f"encrypted PDF: decrypting needs an extra package ({exc})") from exc
        if not opened:
            raise Unreadable("password-protected PDF")
    pages = [page.extract_text() or "" for page in reader.pages]
    if not any(p.strip() for p in pages):
        raise Unreadable("scanned PDF without a text layer")
    starts, pos = [], 0
    for page in pages:
        starts.append(pos)
        pos += len(page) + len(PAGE_SEPARATOR)
    text = PAGE_SEPARATOR.join(pages)
    info_title = ((reader.metadata or {}).get("/Title") or "").strip() if reader.metadata else ""
    title = find_title(text) or info_title or None
    return LoadResult([make_document(doc_id, text, title=title, page_starts=starts)], [])


READERS: dict[str, Callable[[Path, str, dict | None], LoadResult]] = {
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
    ".pdf": read_pdf,
    ".xlsx": read_xlsx,
    ".csv": read_csv,
    ".jsonl": read_jsonl,
}

__all__ = ["READERS", "TableMapping", "detect_mapping", "extract_html", "load_mapping", "parse_mapping",
           "read_csv", "read_docx", "read_html", "read_jsonl", "read_pdf", "read_xlsx", "table_lines"]
