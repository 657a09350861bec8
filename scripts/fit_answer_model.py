#!/usr/bin/env python3
"""Fit the answer model (rag/data/answer_model.json) on the dev parts of the eval sets: never on a test part.

For every dev question the index retrieves its passages exactly as `Index.answer` does; every candidate the engine
makes (a typed value in a clause, or a sentence) gets its features and a label: does the answer it would give
contain an accepted answer? Per family (exact, passage) a listwise ranker orders the candidates (taught also by
the --rank-sets, CMRC by default) and a logistic confidence model reads the ranked candidates. The confidence
models' ridge penalty and the two abstention thresholds are chosen by two-fold cross-validation on the dev
questions: models fitted on one half answer the other half, and on those out-of-fold answers the threshold pair
with the most right answers whose wrong share stays within --target-wrong is kept (a wrong answer is worse than
none). The final models are fitted on all dev questions and use those thresholds.

    python scripts/fit_answer_model.py                     # reference, tipdm and ncp dev parts (+ cmrc rankers)
    python scripts/fit_answer_model.py --sets reference ncp --rank-sets --target-wrong 0.05

Features are cached per question set in the user cache (delete it with --fresh), so refits take seconds.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rag.evaluation import CMRC_SET, REPO as EVAL_REPO, answer_correct, corpus_index, load_eval_set, cmrc_items  # noqa: E402
from rag.qa.candidates import pieces_of  # noqa: E402
from rag.qa.compose import compose, compose_sentence  # noqa: E402
from rag.qa.pipeline import TRY_CANDIDATES, _passage_may_answer  # noqa: E402
from rag.qa.grounding import ground_terms  # noqa: E402
from rag.qa.features import FAMILIES, FEATURES, make_candidates  # noqa: E402
from rag.qa.score import CONFIDENCE_FEATURES, agreement, confidence_rows, sentence_key, vector  # noqa: E402
from rag.qa.semantic import add_semantic  # noqa: E402
from rag.search.model import cache_dir  # noqa: E402

SETS = {"reference": "eval/reference.jsonl", "tipdm": "eval/tipdm.jsonl", "ncp": "eval/ncp.jsonl", "cmrc": CMRC_SET}
# The government-text sets by default; CMRC (encyclopaedia reading comprehension, another genre) only on request:
# pooled in, its many sentence answers decide the thresholds for a genre the product does not serve.
FIT_SETS = ("reference", "tipdm", "ncp")
L2 = 1.0  # ridge penalty of the rankers (on standardised features)
WRONG_COST = 4.0  # among threshold pairs within the wrong-answer cap, ties are broken by right − 4 × wrong
# Chosen by cross-validation on the dev questions (see cross_validate): the confidence models' ridge penalty and
# the two thresholds, on predictions for questions the models were not fitted on.
CONFIDENCE_L2_GRID = (1.0, 10.0, 30.0, 100.0, 150.0, 200.0, 300.0)
CV_SEEDS = 3  # two-fold splits, each seed another shuffle


def dev_items(name: str):
    items = cmrc_items() if SETS[name] == CMRC_SET else load_eval_set(EVAL_REPO / SETS[name])
    # questions that only score retrieval (tipdm titles: a gold reply, no answer string) teach the answer nothing
    return [item for item in items if item.split == "dev" and (item.answers or item.negative)]


def question_rows(index, item) -> dict:
    """Features and labels of every candidate of one question (family, vector, label, conflict, may_answer)."""
    info, hits = index.answer_inputs(item.question, k=5)
    info = ground_terms(info, hits)
    cands = make_candidates(info, hits, pieces_of(hits))
    add_semantic(info, hits, cands, index.embedder)
    rows = []
    for c in cands:
        if c.family == "exact":
            composed = compose(info, hits, c)
            if composed is None or not composed.text.strip():
                continue  # the engine never shows a candidate it cannot compose
            text = composed.text
            may = True
        else:
            text = compose_sentence(info, hits, c).text
            may = _passage_may_answer(info, hits, c)
        label = bool(item.answers) and bool(text) and answer_correct(text, item.answers)
        rows.append({"family": c.family, "x": vector(c.features).tolist(), "y": int(label),
                     "conflict": int(c.conflict), "may": int(may), "sent": list(sentence_key(c))})
    return {"id": item.id, "negative": item.negative, "rows": rows}


def collect(name: str, fresh: bool) -> list[dict]:
    items = dev_items(name)
    key = hashlib.sha1(json.dumps([FEATURES, [i.id for i in items], _code_version()]).encode()).hexdigest()[:12]
    path = Path(cache_dir()) / "answer-fit" / f"{name}-{key}.json"
    if path.is_file() and not fresh:
        return json.loads(path.read_text(encoding="utf-8"))
    index = corpus_index(name, progress=False)
    started = time.perf_counter()
    out = []
    for n, item in enumerate(items, 1):
        index.embedder.forget_queries()
        out.append(question_rows(index, item))
        if n % 50 == 0:
            print(f"  {name}: {n}/{len(items)} questions ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out), encoding="utf-8")
    return out


def _code_version() -> str:
    """A hash of the answer engine's sources: cached features are recomputed when the engine changes."""
    digest = hashlib.sha1()
    for source in sorted((REPO / "rag").rglob("*.py")) + sorted((REPO / "rag" / "data").glob("*.json")):
        if source.name != "answer_model.json":
            digest.update(source.read_bytes())
    return digest.hexdigest()


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 50) -> tuple:
    """Newton-IRLS logistic regression on standardised features; returns (mean, scale, weights, bias)."""
    mean, scale = standardise(x)
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -40, 40)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return mean, scale, w[:-1], float(w[-1])


def fit_ranker(groups: list[tuple[np.ndarray, np.ndarray]], l2: float = L2, steps: int = 400) -> tuple:
    """Softmax (listwise) ranker: per question, maximise the probability of its right candidates among all.

    Only questions with at least one right and one wrong candidate teach the ranking. Adam on standardised
    features; returns (mean, scale, weights)."""
    groups = [(x, y) for x, y in groups if 0 < y.sum() < len(y)]
    mean, scale = standardise(np.vstack([x for x, _ in groups]))
    zs = [((x - mean) / scale, y / y.sum()) for x, y in groups]
    w = np.zeros(len(mean))
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    lr, b1, b2 = 0.05, 0.9, 0.999
    for t in range(1, steps + 1):
        grad = l2 * w
        for z, target in zs:
            s = z @ w
            e = np.exp(s - s.max())
            p = e / e.sum()
            grad += z.T @ (p - target)
        grad /= len(zs)
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        w -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + 1e-8)
    return mean, scale, w


def ranked_rows(q: dict, family: str, ranker: tuple) -> list[tuple[dict, float]]:
    rows = [r for r in q["rows"] if r["family"] == family and not r["conflict"]]
    if not rows:
        return []
    mean, scale, w = ranker
    scores = ((np.array([r["x"] for r in rows]) - mean) / scale) @ w
    order = np.argsort(-scores, kind="stable")
    return [(rows[i], float(scores[i])) for i in order]


def confidence_matrix(ranked: list[tuple[dict, float]], family: str, tops: dict) -> np.ndarray:
    """CONFIDENCE_FEATURES of a family's ranked rows, as rag.qa.score.apply_models computes them."""
    feats = [dict(zip(FEATURES, r["x"]), agrees=agreement(family, tuple(r["sent"]), tops)) for r, _ in ranked]
    return confidence_rows(feats, np.array([s for _, s in ranked]))


def top_sentences(q: dict, rankers: dict) -> dict:
    """The sentence of each family's best candidate (the agreement feature compares them)."""
    tops = {}
    for family in FAMILIES:
        ranked = ranked_rows(q, family, rankers[family])
        tops[family] = tuple(ranked[0][0]["sent"]) if ranked else None
    return tops


def decisions(questions: list[dict], rankers: dict, confidences: dict) -> list[dict]:
    """Per question: (confidence, right) of the top exact candidates and of the top passage, as the engine picks."""
    out = []
    for q in questions:
        d = {"negative": q["negative"], "exact": [], "passage": None}
        tops = top_sentences(q, rankers)
        for family in FAMILIES:
            ranked = ranked_rows(q, family, rankers[family])
            if not ranked:
                continue
            probs = probabilities(confidences[family], confidence_matrix(ranked, family, tops))[:TRY_CANDIDATES]
            ranked = ranked[:TRY_CANDIDATES]
            if family == "exact":
                d["exact"] = [(float(p), r["y"]) for (r, _), p in zip(ranked, probs)]
            else:
                d["passage"] = (float(probs[0]), ranked[0][0]["y"], ranked[0][0]["may"])
        out.append(d)
    return out


def fit_family_ranker(questions: list[dict], family: str) -> tuple:
    """The listwise ranker of one family over every question's candidates."""
    groups = []
    for q in questions:
        rows = [r for r in q["rows"] if r["family"] == family and not r["conflict"]]
        if rows:
            groups.append((np.array([r["x"] for r in rows], dtype=float), np.array([r["y"] for r in rows], float)))
    return fit_ranker(groups)


def fit_confidence(questions: list[dict], family: str, rankers: dict, l2: float = L2) -> tuple[tuple, dict]:
    """The confidence model of one family, learnt from what the engine may give: its top candidates, with
    features over the whole ranking (as the engine sees it)."""
    cx, cy = [], []
    top1 = answered = 0
    for q in questions:
        ranked = ranked_rows(q, family, rankers[family])
        if ranked:
            top = TRY_CANDIDATES if family == "exact" else 1
            cx.append(confidence_matrix(ranked, family, top_sentences(q, rankers))[:top])
            cy += [r["y"] for r, _ in ranked[:top]]
            top1 += ranked[0][0]["y"]
            answered += 1
    confidence = fit_logistic(np.vstack(cx), np.array(cy, dtype=float), l2=l2)
    return confidence, {"questions": answered, "top1_right": int(top1)}


def probabilities(model: tuple, x: np.ndarray) -> np.ndarray:
    mean, scale, w, b = model
    return 1.0 / (1.0 + np.exp(-np.clip(((x - mean) / scale) @ w + b, -40, 40)))


def outcome(decided: list[dict], t_exact: float, t_passage: float) -> tuple[int, int, int]:
    """(right, wrong, abstained) when the engine uses these thresholds."""
    right = wrong = none = 0
    for d in decided:
        chosen = next(((p, y) for p, y in d["exact"] if p >= t_exact), None)
        if chosen is None and d["passage"] and d["passage"][0] >= t_passage and d["passage"][2]:
            chosen = d["passage"][:2]
        if chosen is None:
            none += 1
        elif chosen[1] and not d["negative"]:
            right += 1
        else:
            wrong += 1
    return right, wrong, none


def choose_thresholds(decided: list[dict], max_wrong: float) -> tuple[float, float, tuple]:
    grid = np.round(np.arange(0.05, 0.99, 0.01), 2)
    best = None
    for te in grid:
        for tp in grid:
            right, wrong, none = outcome(decided, te, tp)
            answered = right + wrong
            if answered and wrong / answered > max_wrong:
                continue
            score = (right - WRONG_COST * wrong, -te - tp)
            if best is None or score > best[0]:
                best = (score, float(te), float(tp), (right, wrong, none))
    if best is None:
        return 0.99, 0.99, outcome(decided, 0.99, 0.99)
    return best[1], best[2], best[3]


def cross_validate(questions: list[dict], rank_only: list[dict], target_wrong: float) -> tuple[float, float, float, dict]:
    """(confidence L2, exact threshold, passage threshold) chosen on out-of-fold predictions: each half of the dev
    questions is answered by models fitted on the other half (two folds, CV_SEEDS shuffles); per penalty, the
    threshold pair with the most right answers whose wrong share stays within target_wrong; the penalty whose
    pair answers most."""
    import random

    folds = []
    for seed in range(CV_SEEDS):
        shuffled = questions[:]
        random.Random(seed).shuffle(shuffled)
        halves = shuffled[::2], shuffled[1::2]
        for train, held_out in (halves, halves[::-1]):
            folds.append((train, held_out, {f: fit_family_ranker(train + rank_only, f) for f in FAMILIES}))
    table, best = {}, None
    for l2 in CONFIDENCE_L2_GRID:
        held_out_decisions = []
        for train, held_out, rankers in folds:
            confidences = {f: fit_confidence(train, f, rankers, l2)[0] for f in FAMILIES}
            held_out_decisions += decisions(held_out, rankers, confidences)
        t_exact, t_passage, (right, wrong, none) = choose_thresholds(held_out_decisions, target_wrong)
        table[f"l2={l2:g}"] = {"t_exact": t_exact, "t_passage": t_passage, "right": right, "wrong": wrong,
                               "abstained": none}
        if best is None or right - WRONG_COST * wrong > best[0]:
            best = (right - WRONG_COST * wrong, l2, t_exact, t_passage)
    return best[1], best[2], best[3], table


def _r(a) -> list[float]:
    return np.asarray(a, dtype=float).round(6).tolist()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(FIT_SETS), choices=list(SETS))
    parser.add_argument("--rank-sets", nargs="*", default=["cmrc"], choices=list(SETS),
                        help="dev sets that teach only the rankers, not the confidence or the thresholds "
                             "(default: cmrc, whose many questions help ordering but not calibration)")
    parser.add_argument("--target-wrong", type=float, default=0.03,
                        help="largest out-of-fold share of wrong answers among those given (cross-validated)")
    parser.add_argument("--out", default=str(REPO / "rag" / "data" / "answer_model.json"))
    parser.add_argument("--fresh", action="store_true", help="recompute the cached features")
    args = parser.parse_args(argv)
    questions: list[dict] = []
    per_set: dict[str, int] = {}
    for name in args.sets:
        rows = collect(name, args.fresh)
        per_set[name] = len(rows)
        for q in rows:
            q["set"] = name
        questions += rows
        print(f"{name}: {len(rows)} dev questions", file=sys.stderr)
    rank_only: list[dict] = []
    for name in [n for n in args.rank_sets if n not in args.sets]:
        rows = collect(name, args.fresh)
        per_set[f"{name} (rankers only)"] = len(rows)
        rank_only += rows
    conf_l2, t_exact, t_passage, cv_table = cross_validate(questions, rank_only, args.target_wrong)
    print(f"cross-validated: confidence l2 {conf_l2:g}, thresholds exact {t_exact} passage {t_passage} "
          f"(out of fold: {cv_table[f'l2={conf_l2:g}']})", file=sys.stderr)
    rankers, confidences, counts = {}, {}, {}
    for family in FAMILIES:
        rankers[family] = fit_family_ranker(questions + rank_only, family)
    for family in FAMILIES:
        confidences[family], counts[family] = fit_confidence(questions, family, rankers, conf_l2)
    decided = decisions(questions, rankers, confidences)
    right, wrong, none = outcome(decided, t_exact, t_passage)
    by_set = {}
    for name in args.sets:
        subset = [d for d, q in zip(decided, questions) if q["set"] == name]
        r, w, n = outcome(subset, t_exact, t_passage)
        by_set[name] = {"questions": len(subset), "right": r, "wrong": w, "abstained": n}
    model = {
        "_source": ("Fitted by scripts/fit_answer_model.py on the dev parts of the eval sets (never a test part); "
                    "do not edit by hand, rerun the script."),
        "fitted": {"date": dt.date.today().isoformat(), "sets": per_set, "target_wrong": args.target_wrong,
                   "ranker_l2": L2, "confidence_l2": conf_l2, "cross_validation": cv_table,
                   "candidates": counts, "dev_outcome": by_set,
                   "command": "python scripts/fit_answer_model.py " + " ".join(sys.argv[1:])},
        "features": list(FEATURES),
        "confidence_features": list(CONFIDENCE_FEATURES),
        "families": {
            family: {"rank_mean": _r(rankers[family][0]), "rank_scale": _r(rankers[family][1]),
                     "rank_weights": _r(rankers[family][2]), "conf_mean": _r(confidences[family][0]),
                     "conf_scale": _r(confidences[family][1]), "conf_weights": _r(confidences[family][2]),
                     "conf_bias": round(confidences[family][3], 6), "threshold": t}
            for family, t in zip(FAMILIES, (t_exact, t_passage))},
    }
    Path(args.out).write_text(json.dumps(model, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"thresholds exact {t_exact} passage {t_passage}: dev (in sample) right {right}, wrong {wrong}, "
          f"abstained {none}")
    for name, o in by_set.items():
        print(f"  {name}: {o}")
    for family in FAMILIES:
        weights = dict(zip(FEATURES, rankers[family][2].round(2).tolist()))
        print(f"  {family} ranker: {counts[family]} {weights}")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
