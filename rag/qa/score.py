"""Scoring: the features of every candidate (rag/qa/features.py, rag/qa/semantic.py) combined by the model
fitted on the dev parts (rag/data/answer_model.json, written by scripts/fit_answer_model.py): a ranker orders each
family's candidates, a confidence model gives the probability that the answer is right, and an answer is given
only above the family's threshold.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from rag.qa.features import FAMILIES, FEATURES, Candidate
from rag.patterns import load_data

# ---- the fitted model --------------------------------------------------------------------------------------
# Two stages per family, both fitted by scripts/fit_answer_model.py: a ranker (softmax over the candidates of a
# question) orders the candidates; a confidence model reads the ranked candidate's score, its margin over the
# next one and a few features, and gives the probability that its answer is right. An answer is given only when
# that probability reaches the family's threshold, chosen on the dev parts so that wrong answers stay rare.
CONFIDENCE_FEATURES = ("score", "margin", "gap", "coverage", "coverage_clause", "semantic", "head_clause",
                       "unit_match", "kind_fit", "english", "rank", "hit_score", "year_match", "label",
                       "label_extra", "field_mismatch", "scope_mismatch", "qualifier_match", "unmatched", "length",
                       "agrees", "candidates")


@dataclass
class FamilyModel:
    """Ranker weights over FEATURES, confidence weights over CONFIDENCE_FEATURES (standardised), threshold."""

    rank_mean: np.ndarray
    rank_scale: np.ndarray
    rank_weights: np.ndarray
    conf_mean: np.ndarray
    conf_scale: np.ndarray
    conf_weights: np.ndarray
    conf_bias: float
    threshold: float

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        return ((matrix - self.rank_mean) / self.rank_scale) @ self.rank_weights

    def confidence(self, matrix: np.ndarray) -> np.ndarray:
        z = ((matrix - self.conf_mean) / self.conf_scale) @ self.conf_weights + self.conf_bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


_model_lock = threading.Lock()
_models: dict[str, FamilyModel] | None = None
MODEL_FILE = "answer_model.json"


def models() -> dict[str, FamilyModel]:
    """The fitted models of rag/data/answer_model.json (see scripts/fit_answer_model.py), loaded once."""
    global _models
    with _model_lock:
        if _models is None:
            data = load_data(MODEL_FILE)
            if tuple(data["features"]) != FEATURES or tuple(data["confidence_features"]) != CONFIDENCE_FEATURES:
                raise RuntimeError(f"rag/data/{MODEL_FILE} was fitted on other features; "
                                   "run scripts/fit_answer_model.py")
            _models = {family: family_model(m) for family, m in data["families"].items()}
        return _models


def family_model(m: dict) -> FamilyModel:
    """A FamilyModel from its JSON form (as written by the fit script)."""
    arr = lambda key: np.asarray(m[key], dtype=float)  # noqa: E731
    return FamilyModel(arr("rank_mean"), arr("rank_scale"), arr("rank_weights"), arr("conf_mean"), arr("conf_scale"),
                       arr("conf_weights"), float(m["conf_bias"]), float(m["threshold"]))


def set_models(fitted: dict[str, FamilyModel] | None) -> None:
    """Use other fitted models in this process (None: reload rag/data/answer_model.json on next use)."""
    global _models
    with _model_lock:
        _models = fitted


def vector(features: dict[str, float]) -> np.ndarray:
    return np.asarray([features.get(name, 0.0) for name in FEATURES], dtype=float)


def confidence_rows(features: list[dict[str, float]], scores: np.ndarray) -> np.ndarray:
    """CONFIDENCE_FEATURES of candidates already sorted by ranker score, best first."""
    rows = []
    n = len(scores)
    for i, f in enumerate(features):
        nxt = scores[i + 1] if i + 1 < n else scores[i] - 5.0
        row = {"score": scores[i], "margin": scores[i] - nxt, "gap": scores[0] - scores[i],
               "candidates": np.log1p(n), **{k: f.get(k, 0.0) for k in CONFIDENCE_FEATURES[3:-1]}}
        rows.append([row[k] for k in CONFIDENCE_FEATURES])
    return np.asarray(rows, dtype=float).reshape(len(features), len(CONFIDENCE_FEATURES))


def order_family(cands: list[Candidate], model: FamilyModel) -> tuple[list[Candidate], np.ndarray]:
    """The candidates of one family, best first, with their ranker scores."""
    if not cands:
        return [], np.zeros(0)
    scores = model.scores(np.stack([vector(c.features) for c in cands]))
    order = np.argsort(-scores, kind="stable")
    return [cands[i] for i in order], scores[order]


def sentence_key(c: Candidate) -> tuple[int, int]:
    return c.piece.hit, c.piece.sent_start


def agreement(family: str, key: tuple[int, int], tops: dict[str, tuple[int, int] | None]) -> float:
    """1 when the other family's best candidate stands in the same sentence: two rankings point at it."""
    other = tops.get("passage" if family == "exact" else "exact")
    return 1.0 if other is not None and tuple(key) == tuple(other) else 0.0


def apply_models(cands: list[Candidate]) -> list[Candidate]:
    """Every family's candidates ranked and given their confidence (`prob`); the families in FAMILIES order."""
    fitted = models()
    ranked = {family: order_family([c for c in cands if c.family == family and not c.conflict], fitted[family])
              for family in FAMILIES}
    tops = {family: sentence_key(r[0]) if r else None for family, (r, _) in ranked.items()}
    out: list[Candidate] = []
    for family in FAMILIES:
        family_cands, scores = ranked[family]
        if not family_cands:
            continue
        for c in family_cands:
            c.features["agrees"] = agreement(family, sentence_key(c), tops)
        probs = fitted[family].confidence(confidence_rows([c.features for c in family_cands], scores))
        for c, p in zip(family_cands, probs):
            c.prob = float(p)
        out += family_cands
    return out


def threshold(family: str) -> float:
    model = models().get(family)
    return model.threshold if model is not None else 1.0
