"""Documents added and deleted from the browser or the REST API, and the index the server currently answers from.

Uploads are saved under `<corpus>/uploads/` with a sanitised name and indexed by `rag.build_index` on the server's
corpus folder: the same incremental, atomic build as `rag build`. The new Index then replaces the served one in
`CurrentIndex`, which every handler reads once per request, so a request in flight keeps the index it started with.
"""
from __future__ import annotations

import os
import re
import threading
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from rag.ingest.documents import supported_suffixes
from rag.ingest.reading import MAX_BYTES
from rag.search.index import BuildReport, Index, build_index
from rag.text import replace_surrogates
from rag.types import RagError, shown

UPLOADS = "uploads"  # the folder of the corpus that uploads go to, and the only one deletes may touch
SUFFIXES = supported_suffixes()
MAX_FILE_BYTES = MAX_BYTES  # the build skips larger files anyway
MAX_FILES = 20  # files per request
# All files of one request together; the upload routes' HTTP body cap (ui.limits) is the same number.
MAX_UPLOAD_BYTES = int(os.environ.get("RAG_MAX_UPLOAD_BYTES", str(2 * MAX_BYTES)))
MAX_NAME_CHARS = 100  # of a saved name, suffix included
MAX_NAME_BYTES = 200  # in UTF-8: file systems allow 255
MAX_CLASHES = 1000  # name-2 … name-1000, then the file is refused
COPY_BLOCK = 1024 * 1024
RESERVED = re.compile(r'[\\/:*?"<>|#]')  # path and shell characters, and '#', which separates a row from its file
HIDDEN_PREFIX = re.compile(r"^[\s.~$]+")  # the corpus walker skips dot files and Office lock files (~$x.docx)
BUSY = "another build is running"  # the start of build_index's refusal, and of ours


class UploadRefused(RagError):
    """An upload or delete that cannot be done; `status` is its HTTP status in the REST API."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class CurrentIndex:
    """The index the server answers from: read once per request, replaced whole after a build."""

    def __init__(self, index: Index):
        self._index = index
        self._lock = threading.Lock()

    @classmethod
    def of(cls, index: Index | CurrentIndex) -> CurrentIndex:
        """Wrap a loaded index; a holder is shared as it is, so the chat and the REST API see the same swaps."""
        return index if isinstance(index, cls) else cls(index)

    def get(self) -> Index:
        with self._lock:
            return self._index

    def swap(self, index: Index) -> None:
        with self._lock:
            self._index = index


@dataclass
class Change:
    """What an upload or a delete did: doc ids added and removed, files skipped with the reason, the new index."""

    index: Index
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed,
                "skipped": [{"file": name, "reason": reason} for name, reason in self.skipped],
                "documents": len(self.index.documents()), "generation": self.index.generation.name}


def safe_name(name: str) -> str:
    """A name that cannot leave uploads/, hide from the build, split a doc id or garble a terminal: the last path
    part, without control and format characters, reserved characters or leading dots, at most MAX_NAME_CHARS."""
    name = unicodedata.normalize("NFC", replace_surrogates(str(name)))
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    name = HIDDEN_PREFIX.sub("", RESERVED.sub("_", name)).rstrip(" .")
    stem, suffix = os.path.splitext(name)
    stem, suffix = stem.rstrip(" ."), suffix.lower()
    if len(suffix) > 10:  # no supported suffix is this long: keep the name's start instead
        stem, suffix = name, ""
    return cut_stem(stem or "upload", suffix)


def cut_stem(stem: str, suffix: str) -> str:
    """stem + suffix within MAX_NAME_CHARS characters and MAX_NAME_BYTES bytes, the suffix kept whole."""
    stem = stem[:MAX_NAME_CHARS - len(suffix)]
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem.rstrip(" .") + suffix


def claim(folder: Path, name: str) -> tuple[Path, BinaryIO]:
    """A new file in `folder` opened for writing: `name`, else name-2, name-3 …; never an existing file."""
    stem, suffix = os.path.splitext(name)
    for n in range(1, MAX_CLASHES + 1):
        candidate = folder / (name if n == 1 else cut_stem(f"{stem}-{n}", suffix))
        try:
            return candidate, open(candidate, "xb")  # O_EXCL: fails on any existing entry, links included
        except FileExistsError:
            continue
    raise UploadRefused(f"{MAX_CLASHES} files named like {shown(name)} are already in {UPLOADS}/", 409)


def copy_capped(source: BinaryIO, target: BinaryIO, limit: int) -> int | None:
    """Copy in blocks; the bytes copied, or None as soon as the source passes `limit` (the rest is never read)."""
    total = 0
    while block := source.read(COPY_BLOCK):
        total += len(block)
        if total > limit:
            return None
        target.write(block)
    return total


def belongs(doc_id: str, file_id: str) -> bool:
    """Whether a doc id (or skipped path) is the file `file_id` or one of its rows ("file#row")."""
    return doc_id == file_id or doc_id.startswith(file_id + "#")


def is_upload(doc_id: str) -> bool:
    return doc_id.startswith(UPLOADS + "/")


def deletable(index: Index) -> list[tuple[str, str]]:
    """(label, file id) of every uploaded file in the index: a document, or a collection with its rows."""
    files: dict[str, list] = {}
    for doc in index.documents():
        if is_upload(doc.doc_id):
            files.setdefault(doc.doc_id.split("#", 1)[0], []).append(doc)
    choices = []
    for file_id, docs in sorted(files.items()):
        title = docs[0].title if len(docs) == 1 and docs[0].doc_id == file_id else f"{len(docs)} rows"
        choices.append((f"{title} ({file_id})" if title and title != file_id else file_id, file_id))
    return choices


def mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


class Library:
    """The server's corpus folder and the index built from it: adds and deletes uploads, one build at a time."""

    def __init__(self, current: CurrentIndex, corpus_dir: str | os.PathLike | None):
        self.current = current
        self.corpus = Path(corpus_dir) if corpus_dir is not None else None
        self._busy = threading.Lock()

    @property
    def folder(self) -> Path:
        return self.corpus / UPLOADS

    def refusal(self) -> str | None:
        """Why this server cannot take uploads (no corpus folder, a single-file corpus, an index built from
        elsewhere), or None when it can."""
        if self.corpus is None:
            return ("documents cannot be added or deleted on this server: it was started without a corpus folder, "
                    "or with rag serve --no-uploads")
        if not self.corpus.is_dir():
            return (f"uploads need a corpus folder: this server indexes the single file {self.corpus.name}; serve "
                    "a folder (rag serve --corpus DIR) to add documents from the browser")
        built_from = self.current.get().manifest.get("corpus_dir")
        if built_from and Path(built_from).resolve() != self.corpus.resolve():
            return (f"the index was built from {built_from}, not from this server's corpus folder {self.corpus}; "
                    f"serve it with --corpus {built_from} to add documents")
        return None

    def check(self) -> None:
        reason = self.refusal()
        if reason:
            raise UploadRefused(reason, 403)

    # ---- adding --------------------------------------------------------------------------------
    def add(self, files: Iterable[tuple[str, BinaryIO]], progress: bool = False) -> Change:
        """Save the files under uploads/ and build; a file the build cannot read is removed again and listed."""
        self.check()
        with self.building():
            saved, skipped = self.save_all(files)
            if not saved:
                return Change(self.current.get(), skipped=skipped)
            try:
                report, index = self.build(progress)
            except BaseException:
                for path in saved.values():
                    path.unlink(missing_ok=True)
                raise
            change = Change(index, skipped=skipped)
            for file_id, path in saved.items():
                self.settle(file_id, path, report, change)
            return change

    def save_all(self, files: Iterable[tuple[str, BinaryIO]]) -> tuple[dict[str, Path], list[tuple[str, str]]]:
        """{file id: path} of the files saved, and (name, reason) of those refused (type, size, count, total)."""
        folder = self.uploads_folder()
        saved: dict[str, Path] = {}
        skipped: list[tuple[str, str]] = []
        total = 0
        for count, (sent, source) in enumerate(files, 1):
            name = safe_name(sent)
            reason = self.refuse_early(name, count)
            if reason is None:
                path, size = self.save_one(folder, name, source, min(MAX_FILE_BYTES, MAX_UPLOAD_BYTES - total))
                if path is not None:
                    saved[f"{UPLOADS}/{path.name}"], total = path, total + size
                    continue
                reason = self.too_large(total)
            skipped.append((name, reason))
        return saved, skipped

    @staticmethod
    def refuse_early(name: str, count: int) -> str | None:
        """The reason to refuse a file before reading it (its type, or one file too many), else None."""
        suffix = os.path.splitext(name)[1]
        if suffix not in SUFFIXES:
            return f"unsupported file type '{suffix or name}' (supported: {' '.join(SUFFIXES)})"
        if count > MAX_FILES:
            return f"more than {MAX_FILES} files in one upload; add it in another one"
        return None

    @staticmethod
    def too_large(total: int) -> str:
        if MAX_UPLOAD_BYTES - total >= MAX_FILE_BYTES:
            return f"file too large (the limit is {mib(MAX_FILE_BYTES)} a file)"
        return f"over the limit of {mib(MAX_UPLOAD_BYTES)} for one upload; add it in another one"

    @staticmethod
    def save_one(folder: Path, name: str, source: BinaryIO, limit: int) -> tuple[Path | None, int]:
        """(path, size) of the saved copy, or (None, 0) when the file passes `limit` (its partial copy removed)."""
        path, target = claim(folder, name)
        with target:
            size = copy_capped(source, target, limit)
        if size is None:
            path.unlink(missing_ok=True)
            return None, 0
        return path, size

    def uploads_folder(self) -> Path:
        """uploads/ in the corpus, created when missing; refused when it is a file or a link out of the corpus."""
        folder = self.folder
        if folder.is_symlink() and not Path(os.path.realpath(folder)).is_relative_to(os.path.realpath(self.corpus)):
            raise UploadRefused(f"{folder} is a link out of the corpus folder; uploads are not written there", 403)
        try:
            folder.mkdir(exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UploadRefused(f"{folder} is a file, not a folder: move it away to add documents", 403) from None
        if not folder.is_dir():
            raise UploadRefused(f"{folder} is a file, not a folder: move it away to add documents", 403)
        return folder

    def settle(self, file_id: str, path: Path, report: BuildReport, change: Change) -> None:
        """Record what the build made of one saved file; a file with no document in the index is removed."""
        indexed = sorted(d.doc_id for d in change.index.documents() if belongs(d.doc_id, file_id))
        reasons = [(name, reason) for name, reason in report.skipped if belongs(name, file_id)]
        if not indexed:
            path.unlink(missing_ok=True)
            reasons = reasons[:1] or [(file_id, "no text could be read from it")]
            reasons = [(path.name, reason.replace(str(path), path.name)) for _, reason in reasons]  # no server path
        change.added.extend(indexed)
        change.skipped.extend(reasons)

    # ---- deleting ------------------------------------------------------------------------------
    def delete(self, doc_id: Any) -> Change:
        """Remove an uploaded file (a document, or a collection with all its rows) and rebuild."""
        self.check()
        file_id = self.file_of(doc_id)
        path = self.corpus / file_id
        if path.is_symlink() or not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(self.folder)):
            raise UploadRefused(f"{shown(file_id)} does not lie in {UPLOADS}/; it is not deleted from here", 403)
        with self.building():
            aside = path.with_name(f".deleting-{os.getpid()}-{path.name}")  # hidden: the build does not read it
            if path.exists():
                os.replace(path, aside)
            try:
                report, index = self.build(progress=False)
            except BaseException:
                if aside.exists():
                    os.replace(aside, path)
                raise
            aside.unlink(missing_ok=True)
            return Change(index, removed=report.removed)

    def file_of(self, doc_id: Any) -> str:
        """The uploaded file an id names: a document under uploads/, or a collection file whose rows are indexed."""
        if not isinstance(doc_id, str) or not doc_id:
            raise UploadRefused(f"a document id is needed, got {shown(doc_id)}", 400)
        ids = {d.doc_id for d in self.current.get().documents()}
        known = doc_id in ids or any(belongs(i, doc_id) for i in ids)
        if not known:
            raise UploadRefused(f"no document {shown(doc_id)} in this index", 404)
        if not is_upload(doc_id):
            raise UploadRefused(f"{shown(doc_id)} is part of the corpus folder, not an upload: only documents under "
                                f"{UPLOADS}/ can be deleted here; remove the file from the corpus and run rag build", 403)
        if "#" in doc_id:
            file_id = doc_id.split("#", 1)[0]
            raise UploadRefused(f"{shown(doc_id)} is one row of {shown(file_id)}; delete {shown(file_id)} to remove "
                                "the file with all its rows", 400)
        return doc_id

    # ---- building ------------------------------------------------------------------------------
    @contextmanager
    def building(self) -> Iterator[None]:
        """Hold the one build of this server, or refuse at once, as the build lock does."""
        if not self._busy.acquire(blocking=False):
            raise UploadRefused(f"{BUSY} on this index; wait for it to finish, then try again", 409)
        try:
            yield
        finally:
            self._busy.release()

    def build(self, progress: bool) -> tuple[BuildReport, Index]:
        """`rag build CORPUS --index DIR` with the served index's model; the result is served from now on."""
        served = self.current.get()
        report = BuildReport()
        try:
            index = build_index(self.corpus, served.index_dir, model=served.manifest.get("model_name"),
                                progress=progress, report=report)
        except RagError as exc:
            raise UploadRefused(str(exc), 409 if str(exc).startswith(BUSY) else 500) from None
        self.current.swap(index)
        return report, index
