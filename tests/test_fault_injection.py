"""Fault injection: every stored file of an index (and CURRENT, the build lock, the model cache) truncated, with a
byte flipped, replaced by the wrong JSON type, deleted, or made unreadable.

What must hold for each: loading gives a clear IndexLoadError/RagError naming the damaged file and the fix, or a
correct result; the read changes nothing on disk; and an explicit build afterwards gives a correct index again.
Never a traceback, never a lost index.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import rag
from rag.types import RagError

from test_hardening import DOCS, write_corpus

QUESTION = "改造了多少公里供水管网？"
DAMAGES = ("truncate", "flip", "wrong_json", "delete", "unreadable")
GENERATION_FILES = ("manifest.json", "documents.json", "chunks.json", "tokens.json", "vectors.faiss",
                    "bm25/data.csc.index.npy", "bm25/indices.csc.index.npy", "bm25/indptr.csc.index.npy",
                    "bm25/params.index.json", "bm25/vocab.index.json")


def damage(path: Path, how: str) -> None:
    """Damage one file the way a full disk, a bad sector, a careless edit or a wrong chmod would."""
    if how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        data = bytearray(path.read_bytes() or b"\x00")
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "wrong_json":
        path.write_text(json.dumps([{"not": "what was here"}]))
    elif how == "delete":
        path.unlink()
    elif how == "unreadable":
        if os.geteuid() == 0:  # permissions do not bind root: a folder in the file's place cannot be read either
            path.unlink()
            path.mkdir()
        else:
            path.chmod(0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("fault") / "corpus")


@pytest.fixture(scope="module")
def pristine(corpus) -> tuple[Path, list[dict]]:
    """An index and the hits it gives, to compare a damaged copy with."""
    index_dir = corpus.parent / "index"
    index = rag.build_index(corpus, index_dir, progress=False)
    return index_dir, [h.to_dict() for h in index.search(QUESTION, k=2)]


def check_read(index_dir: Path, expected: list[dict], named: str) -> None:
    """A clear error that names the damage and the fix, or the right answer; and nothing written."""
    before = snapshot_safe(index_dir)
    try:
        hits = [h.to_dict() for h in rag.load_index(index_dir).search(QUESTION, k=2)]
    except RagError as exc:
        message = str(exc)
        assert named in message and "rag build" in message, message
    else:
        assert hits == expected
    assert snapshot_safe(index_dir) == before


def snapshot_safe(folder: Path) -> dict[str, bytes | str]:
    """snapshot(), with folders and unreadable files recorded by kind instead of content."""
    out: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        try:
            out[rel] = path.read_bytes() if path.is_file() else "folder"
        except OSError:
            out[rel] = "unreadable"
    return out


def check_rebuild(corpus: Path, index_dir: Path, expected: list[dict]) -> None:
    """An explicit (incremental) build over the damage gives the right index again."""
    restore_permissions(index_dir)
    index = rag.build_index(corpus, index_dir, progress=False)
    assert [h.to_dict()["text"] for h in index.search(QUESTION, k=2)] == [h["text"] for h in expected]
    assert {d.doc_id for d in index.documents()} == set(DOCS)


def restore_permissions(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def damaged_copy(pristine, tmp_path: Path, rel: str, how: str) -> Path:
    """A copy of the pristine index with `rel` ("CURRENT", ".build.lock", "generation/<file>") damaged."""
    index_dir = Path(shutil.copytree(pristine[0], tmp_path / "index"))
    generation = index_dir / "generations" / (index_dir / "CURRENT").read_text().strip()
    damage(generation / rel[len("generation/"):] if rel.startswith("generation/") else index_dir / rel, how)
    return index_dir


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", GENERATION_FILES)
def test_damaged_generation_file(pristine, corpus, tmp_path, name, how):
    expected = pristine[1]
    index_dir = damaged_copy(pristine, tmp_path, f"generation/{name}", how)
    check_read(index_dir, expected, named=Path(name).name)
    check_rebuild(corpus, index_dir, expected)


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_current_pointer(pristine, corpus, tmp_path, how):
    expected = pristine[1]
    index_dir = damaged_copy(pristine, tmp_path, "CURRENT", how)
    check_read(index_dir, expected, named="CURRENT")
    if (index_dir / "CURRENT").is_dir():  # a folder in its place is not the build's to delete: named, left alone
        with pytest.raises(RagError, match="CURRENT is a folder"):
            rag.build_index(corpus, index_dir, progress=False)
        (index_dir / "CURRENT").rmdir()
    check_rebuild(corpus, index_dir, expected)


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_build_lock(pristine, corpus, tmp_path, how):
    expected = pristine[1]
    index_dir = damaged_copy(pristine, tmp_path, ".build.lock", how)
    check_read(index_dir, expected, named=".build.lock")  # reads never take the lock
    try:
        check_rebuild(corpus, index_dir, expected)
    except RagError as exc:  # a lock that cannot be opened is named; the index it guards stays readable
        assert ".build.lock" in str(exc) and "cannot write to the index folder" in str(exc)
        assert [h.to_dict() for h in rag.load_index(index_dir).search(QUESTION, k=2)] == expected


MODEL_FILES = ("model.safetensors", "tokenizer.json", "config.json", "modules.json", "1_Pooling/config.json",
               "rag-build.json")


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory):
    """One copy of the built default model folder, damaged and restored file by file (it is 470 MB)."""
    from rag.search.model import build_default_model

    built = build_default_model()
    dest = tmp_path_factory.mktemp("model-cache") / built.name
    shutil.copytree(built, dest)
    yield built, dest
    shutil.rmtree(dest, ignore_errors=True)


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", MODEL_FILES)
def test_damaged_model_cache_is_never_trusted(model_copy, name, how):
    """A damaged cached model is seen as incomplete, so it is rebuilt (test_hardening's T4 case rebuilds and loads)."""
    from rag.search.model import is_complete

    built, dest = model_copy
    assert is_complete(dest)
    damage(dest / name, how)
    try:
        assert not is_complete(dest)
    finally:
        target = dest / name
        if target.is_dir():
            target.rmdir()
        elif target.exists():
            target.chmod(0o644)
        shutil.copy(built / name, target)
    assert is_complete(dest)
