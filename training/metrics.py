"""Evaluation metrics used by every training and evaluation entry point."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score


def binary_accuracy(probs: np.ndarray, labels: list[int]) -> float:
    """Accuracy on a two-class set: positive vs negative, neutral probability ignored."""
    pred = np.where(probs[:, 2] >= probs[:, 0], 2, 0)
    return float(accuracy_score(labels, pred))


def macro_recall(probs: np.ndarray, labels: list[int]) -> float:
    return float(recall_score(labels, probs.argmax(1), average="macro", labels=[0, 1, 2]))


def macro_f1(probs: np.ndarray, labels: list[int]) -> float:
    return float(f1_score(labels, probs.argmax(1), average="macro", labels=[0, 1, 2]))


def expected_calibration_error(probs: np.ndarray, labels: list[int], bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins."""
    conf = probs.max(1)
    correct = (probs.argmax(1) == np.asarray(labels)).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def sentiment_metric(
    name: str, binary: bool, probs: np.ndarray, labels: list[int]
) -> tuple[str, float]:
    """The target metric of a sentiment dev set, in percent: accuracy on two-class sets,
    macro recall on TweetEval (its official measure), macro F1 elsewhere."""
    if binary:
        return "accuracy (pos vs neg)", 100 * binary_accuracy(probs, labels)
    if name.startswith("tweeteval"):
        return "macro recall", 100 * macro_recall(probs, labels)
    return "macro F1", 100 * macro_f1(probs, labels)


def sentiment_row(s, probs: np.ndarray, raw: np.ndarray | None = None) -> dict:
    """One table row for a dev set: its metric, and ECE before/after calibration on
    three-class sets (``raw``: the probabilities before temperature scaling)."""
    metric, value = sentiment_metric(s.name, s.binary, probs, s.labels)
    row = {"set": s.name, "metric": metric, "value": value}
    if raw is not None and not s.binary:
        row["ece_before"] = expected_calibration_error(raw, s.labels)
        row["ece_after"] = expected_calibration_error(probs, s.labels)
    return row


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table (what the entry points print)."""
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    line = "  ".join(c.ljust(widths[c]) for c in columns)
    out = [line, "  ".join("-" * widths[c] for c in columns)]
    out += ["  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(out)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 1 else f"{v:.4f}"
    return str(v)
