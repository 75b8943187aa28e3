"""Expected metric values for Tests/MetricsTests, computed by scikit-learn (classification, ROC AUC,
average precision) and lifelines (concordance index) on seeded random data with ties.
Run once; the output is committed:

    .venv-ref/bin/pip install numpy scikit-learn lifelines
    .venv-ref/bin/python scripts/reference/make_metric_fixtures.py
"""
import json
from pathlib import Path

import numpy as np
from lifelines.utils import concordance_index
from sklearn import metrics

rng = np.random.default_rng(7)
out = Path(__file__).resolve().parents[2] / "Tests/MetricsTests/Fixtures/metrics.json"
out.parent.mkdir(parents=True, exist_ok=True)
cases = []
for case in range(6):
    n, k = int(rng.integers(20, 200)), 3
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[truth] * (case % 3)
    logits = np.round(logits, 1)  # rounding makes ties in the scores
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    predicted = probabilities.argmax(1)
    binary_truth = (truth == 0)
    binary_score = np.round(probabilities[:, 0], 2)
    times = rng.integers(1, 60, n).astype(float)  # integer times: ties in time
    events = rng.random(n) < 0.6
    risk = np.round(rng.normal(size=n) - 0.02 * times * (case % 2), 1)
    cases.append({
        "truth": truth.tolist(), "predicted": predicted.tolist(), "probabilities": probabilities.tolist(),
        "binary_truth": binary_truth.tolist(), "binary_score": binary_score.tolist(),
        "times": times.tolist(), "events": events.tolist(), "risks": risk.tolist(),
        "accuracy": metrics.accuracy_score(truth, predicted),
        "balanced_accuracy": metrics.balanced_accuracy_score(truth, predicted),
        "macro_f1": metrics.f1_score(truth, predicted, average="macro", labels=list(range(k)), zero_division=0),
        "precision": metrics.precision_score(truth, predicted, average=None, labels=list(range(k)), zero_division=0).tolist(),
        "recall": metrics.recall_score(truth, predicted, average=None, labels=list(range(k)), zero_division=0).tolist(),
        "confusion": metrics.confusion_matrix(truth, predicted, labels=list(range(k))).tolist(),
        "binary_auc": metrics.roc_auc_score(binary_truth, binary_score),
        "macro_auc": metrics.roc_auc_score(truth, probabilities, multi_class="ovr", average="macro"),
        "average_precision": metrics.average_precision_score(binary_truth, binary_score),
        # lifelines scores survival (higher = longer), so the risk enters negated.
        "c_index": concordance_index(times, -risk, events),
    })
out.write_text(json.dumps({"cases": cases}) + "\n")
print("wrote", out, out.stat().st_size, "bytes")
