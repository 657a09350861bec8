"""Corpus loading: walk a folder (or take one file), decode every supported file, and report the files it
could not read.

A bad file never stops a load: it becomes a `SkippedFile` with a reason a user can act on, and a
logging warning names it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Iterable

from rag.ingest import formats
from rag.ingest.reading import (  # noqa: F401 - MAX_BYTES, content_hash, decode_bytes: part of this module's API
    MAX_BYTES, SIDECAR_SUFFIX, TEXT_SUFFIXES, WARN_PER_FILE, LoadResult, SkippedFile, Unreadable, content_hash,
    decode_bytes, make_document,
)
from rag.types import RagError

log = logging.getLogger(__name__)

def read_text_file(path: Path, doc_id: str) -> LoadResult:
    """A .txt/.md file as one Document whose text is the decoded file, unchanged."""
    text = decode_bytes(path.read_bytes())
    if not text.strip():
        raise Unreadable("empty file (no text)")
    return LoadResult([make_document(doc_id, text)], [])


# ---------------------------------------------------------------- walking


def _hidden(name: str) -> bool:
    """Dot files and Office lock files ("~$report.docx") are never documents."""
    return name.startswith((".", "~$"))


def _inside(path: str, root_real: str) -> bool:
    """Whether a resolved path lies in the corpus folder (a link may point anywhere on the machine)."""
    return path == root_real or path.startswith(root_real.rstrip(os.sep) + os.sep)


def _outside_link(path: Path, root_real: str) -> str | None:
    """The reason to skip a symbolic link that leads out of the corpus folder, else None."""
    if not path.is_symlink() or not path.exists():
        return None  # not a link, or a broken one (reported by the reader's precheck)
    target = os.path.realpath(path)
    if _inside(target, root_real):
        return None
    return f"symbolic link to {target}, outside the corpus folder; not followed (rag build --follow-symlinks reads it)"


def iter_corpus_files(root: Path, follow_symlinks: bool = False) -> tuple[list[tuple[str, Path]], list[SkippedFile]]:
    """(relative POSIX path, path) of every non-hidden, non-sidecar file, sorted, and the links left out.

    Links that stay inside the corpus are followed; links that leave it only with `follow_symlinks`, so a
    corpus cannot make the index read /etc/passwd or walk /etc by accident or by design.
    """
    found: list[tuple[str, Path]] = []
    skipped: list[SkippedFile] = []
    seen_dirs: set[str] = set()
    root_real = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink loop
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        kept = []
        for name in sorted(d for d in dirnames if not _hidden(d)):
            reason = None if follow_symlinks else _outside_link(Path(dirpath) / name, root_real)
            if reason:
                skipped.append(SkippedFile((Path(dirpath) / name).relative_to(root).as_posix() + "/", reason))
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            if _hidden(name) or name.endswith(SIDECAR_SUFFIX):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            reason = None if follow_symlinks else _outside_link(path, root_real)
            if reason:
                skipped.append(SkippedFile(rel, reason))
            else:
                found.append((rel, path))
    return sorted(found), sorted(skipped, key=lambda s: s.path)


def _reader_for(suffix: str) -> Callable[..., LoadResult] | None:
    """The reader function for a file suffix (None when unsupported)."""
    if suffix in TEXT_SUFFIXES:
        return lambda path, doc_id, mapping: read_text_file(path, doc_id)
    return formats.READERS.get(suffix)


def _precheck(path: Path, max_bytes: int) -> None:
    """Reject broken links, empty and oversized files before reading them."""
    if not path.exists():
        raise Unreadable("broken symlink")
    size = path.stat().st_size
    if size == 0:
        raise Unreadable("empty file (0 bytes)")
    if size > max_bytes:
        raise Unreadable(f"file too large ({size / 1e6:.1f} MB > limit {max_bytes / 1e6:.1f} MB)")


def load_file(path: Path, doc_id: str, mapping: dict | None = None, max_bytes: int = MAX_BYTES) -> LoadResult:
    """Read one corpus file; any failure becomes a SkippedFile instead of an exception."""
    reader = _reader_for(path.suffix.lower())
    if reader is None:
        log.info("skipping %s: unsupported file type", doc_id)
        return LoadResult([], [SkippedFile(doc_id, f"unsupported file type '{path.suffix or path.name}'")])
    try:
        _precheck(path, max_bytes)
        result = reader(path, doc_id, mapping)
    except Unreadable as exc:
        result = LoadResult([], [SkippedFile(doc_id, str(exc))])
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a corpus load
        result = LoadResult([], [SkippedFile(doc_id, f"could not read: {type(exc).__name__}: {exc}")])
    for skipped in result.skipped[:WARN_PER_FILE]:
        log.warning("skipped %s: %s", skipped.path, skipped.reason)
    if len(result.skipped) > WARN_PER_FILE:
        log.warning("skipped %d more rows of %s (see LoadResult.skipped)", len(result.skipped) - WARN_PER_FILE, doc_id)
    return result


def _progress(items: list, enabled: bool) -> Iterable:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="reading", unit="file")


def corpus_files(corpus: str | os.PathLike,
                 follow_symlinks: bool = False) -> tuple[list[tuple[str, Path]], list[SkippedFile]]:
    """(doc id, path) of the files of a corpus (every file under a folder, or one file given by itself),
    and the links left out (see iter_corpus_files).

    A single file's doc id is its name, exactly what it would be in a folder holding it, so an index
    built from the folder stays valid when it is rebuilt from the file (and the other way round).
    """
    root = Path(corpus)
    if root.is_dir():
        return iter_corpus_files(root, follow_symlinks)
    if not root.is_file():
        raise RagError(f"corpus not found: {root} (give an existing folder of documents or a document file)")
    if root.name.endswith(SIDECAR_SUFFIX):
        raise RagError(f"{root} is a column mapping, not a document: give the file it describes "
                       f"(or pass it with --mapping)")
    if _reader_for(root.suffix.lower()) is None:
        supported = " ".join(supported_suffixes())
        raise RagError(f"cannot index {root}: unsupported file type '{root.suffix or root.name}' "
                       f"(supported: {supported})")
    return [(root.name, root)], []


def supported_suffixes() -> tuple[str, ...]:
    """Every file suffix a corpus may hold, sorted (the readers' and the plain-text ones)."""
    return tuple(sorted({*TEXT_SUFFIXES, *formats.READERS}))


def load_corpus(
    corpus: str | os.PathLike,
    mapping: dict | None = None,
    progress: bool = False,
    max_bytes: int = MAX_BYTES,
    follow_symlinks: bool = False,
) -> LoadResult:
    """Every supported file under a corpus folder — or one corpus file — as Documents, plus what was
    skipped and why.

    A tabular file (.xlsx/.csv/.jsonl) takes its columns from a `<file>.rag.json` sidecar beside it, else
    from `mapping`, else from obvious column names (rag.formats.detect_mapping). Links out of a corpus folder
    are skipped unless `follow_symlinks`.
    """
    files, links = corpus_files(corpus, follow_symlinks)
    result = LoadResult(skipped=list(links))
    for link in links:
        log.warning("skipped %s: %s", link.path, link.reason)
    for doc_id, path in _progress(files, progress):
        result.extend(load_file(path, doc_id, mapping, max_bytes))
    return result
