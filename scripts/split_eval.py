#!/usr/bin/env python3
"""Add a deterministic dev/test split to eval question sets, in place.

    python scripts/split_eval.py                 # eval/reference.jsonl, eval/tipdm.jsonl, eval/ncp.jsonl if present
    python scripts/split_eval.py eval/ncp.jsonl  # only the files given
    python scripts/split_eval.py --check         # exit 1 (and rewrite nothing) when a file is not split as it should be

Rule: within each (corpus, kind) group of a file, records are ordered by the sha1 of their id (hex digest of the
UTF-8 id) and assigned dev, test, dev, test, ... in that order; so every kind is split 50/50 (a group of odd size
has one more dev record). The split depends only on the ids in the group: running the script again changes
nothing (idempotent), and a record keeps its split when other files or other groups change. Adding or removing
records in the *same* (corpus, kind) group can move other records of that group between dev and test; that is
accepted (re-run the script after editing a set, and compare dev/test numbers only between runs on the same
version of the set).

The file is rewritten keeping line order, UTF-8 with ensure_ascii=False, one record a line, fields in the order
id, question, answers, doc_id, evidence, kind, corpus, split (any other field after these, in its original order).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILES = ("eval/reference.jsonl", "eval/tipdm.jsonl")
OPTIONAL_FILES = ("eval/ncp.jsonl",)
FIELD_ORDER = ("id", "question", "answers", "doc_id", "evidence", "kind", "corpus", "split")
SPLITS = ("dev", "test")


def id_hash(record_id: str) -> str:
    return hashlib.sha1(record_id.encode("utf-8")).hexdigest()


def assign_splits(records: list[dict]) -> list[str]:
    """The split of each record (same order as `records`), by the rule in the module docstring."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        groups[(str(rec.get("corpus")), str(rec.get("kind")))].append(i)
    splits = [""] * len(records)
    for members in groups.values():
        for rank, i in enumerate(sorted(members, key=lambda i: (id_hash(str(records[i]["id"])), str(records[i]["id"])))):
            splits[i] = SPLITS[rank % 2]
    return splits


def ordered(rec: dict) -> dict:
    out = {name: rec[name] for name in FIELD_ORDER if name in rec}
    out.update((k, v) for k, v in rec.items() if k not in out)
    return out


def split_text(text: str, name: str = "<text>") -> str:
    """The new content of one JSON Lines file; blank lines are kept where they are."""
    lines = text.splitlines()
    records, where = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{name}:{number}: not JSON: {exc}") from exc
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
            raise SystemExit(f"{name}:{number}: a record must be an object with a string id")
        records.append(rec)
        where.append(number - 1)
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise SystemExit(f"{name}: duplicate ids {dupes}")
    for rec, split in zip(records, assign_splits(records)):
        rec["split"] = split
    for line_index, rec in zip(where, records):
        lines[line_index] = json.dumps(ordered(rec), ensure_ascii=False)
    return "\n".join(lines) + "\n" if lines else ""


def write_atomic(path: Path, content: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_paths() -> list[Path]:
    paths = [REPO / f for f in DEFAULT_FILES]
    paths += [REPO / f for f in OPTIONAL_FILES if (REPO / f).exists()]
    return paths


def summary(content: str) -> str:
    counts: dict[str, int] = defaultdict(int)
    for line in content.splitlines():
        if line.strip():
            counts[json.loads(line)["split"]] += 1
    return ", ".join(f"{s} {counts[s]}" for s in SPLITS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path,
                        help="eval JSONL files (default: eval/reference.jsonl, eval/tipdm.jsonl, eval/ncp.jsonl if present)")
    parser.add_argument("--check", action="store_true", help="only report files whose split is missing or stale")
    args = parser.parse_args(argv)
    paths = args.files or default_paths()
    stale = []
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"{path}: no such file")
        old = path.read_text(encoding="utf-8")
        new = split_text(old, str(path))
        state = "unchanged" if new == old else ("stale" if args.check else "rewritten")
        if new != old:
            stale.append(path)
            if not args.check:
                write_atomic(path, new)
        print(f"{path}: {state} ({summary(new)})")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
