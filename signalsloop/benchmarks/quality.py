"""Quality and cost of the offline analyzer on public labeled data.

``python -m signalsloop.benchmarks.quality`` (``make bench-quality``) prints one
JSON object; every quality figure is on data its tuning did not see, the
previous method ("old") beside the current one ("new"):

- sentiment: :mod:`signalsloop.benchmarks.train_sentiment`'s protocol (held-out
  halves, every source left out in turn, confusion matrices, class shares);
  and, when ``SIGNALSLOOP_TWEETEVAL_DIR`` is set, TweetEval's test split
  (:mod:`signalsloop.benchmarks.tweeteval_test`), and when
  ``SIGNALSLOOP_AIRLINE_TWEETS`` is set, customer-service tweets to airlines
  (:mod:`signalsloop.benchmarks.airline_tweets`);
- themes: :mod:`signalsloop.benchmarks.train_themes`' (adjusted Rand index
  against review categories, apps split in halves);
- duplicates: :mod:`signalsloop.benchmarks.duplicates` on a scratch database:
  the threshold's precision/recall and recall@5 on STS-B dev (weights fit on
  train), on synthetic technical reports, on real trackers when
  ``SIGNALSLOOP_TRACKER_DIR`` is set (:mod:`signalsloop.benchmarks.tracker_duplicates`),
  and p50/p95 of one lookup in a project of 100,000 items
  (``SIGNALSLOOP_BENCH_ITEMS`` to change);
- similarity: Spearman of cosine vs the STS-B dev score (the embedding alone);
- runtime: cold start (fresh process: import and first calls), per-item
  latency and peak RSS (VmHWM; ``ru_maxrss`` would report the forking
  parent's size on Linux), measured in a subprocess.

Training-side figures need scikit-learn (``pip install -e '.[train]'``, which
``make bench-quality`` does); inference never does.

The data (never copied into the repo) is read from ``<repo>/../shared/data``
or ``$SIGNALSLOOP_DATA_DIR``. Metrics are plain numpy (rank-based).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shared.analyzers.offline import OfflineAnalyzer
from shared.clustering import DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_THEME_THRESHOLD, unit_rows

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("sentiment-tweeteval-val", "similarity-stsb-dev", "reviews-clap-categories", "similarity-stsb-train")
LABELS = ("negative", "neutral", "positive")


def data_dir() -> Path:
    return Path(os.environ.get("SIGNALSLOOP_DATA_DIR") or REPO.parent / "shared" / "data")


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (Mann-Whitney)."""
    ranks = rankdata(score)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int = 3) -> float:
    scores = []
    for k in range(classes):
        tp = int(((predicted == k) & (truth == k)).sum())
        wrong = int(((predicted == k) != (truth == k)).sum())
        scores.append(2 * tp / max(2 * tp + wrong, 1))
    return float(np.mean(scores))


def _precision_recall(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((predicted & truth).sum())
    return {
        "precision": round(tp / max(int(predicted.sum()), 1), 4),
        "recall": round(tp / max(int(truth.sum()), 1), 4),
    }


def bench_similarity(analyzer: OfflineAnalyzer, root: Path) -> dict[str, object]:
    rows = [line.split("\t") for line in (root / FOLDERS[1] / "sts-dev.csv").read_text("utf-8").splitlines()]
    rows = [r for r in rows if len(r) >= 7]
    gold = np.array([float(r[4]) for r in rows])
    left = unit_rows(np.asarray(analyzer.embed([r[5] for r in rows])))
    right = unit_rows(np.asarray(analyzer.embed([r[6] for r in rows])))
    cosine = (left * right).sum(axis=1)
    return {
        "dataset": "STS-B dev",
        "n": len(rows),
        "spearman": round(spearman(cosine, gold), 4),
        "duplicate_threshold": DEFAULT_DUPLICATE_THRESHOLD,
        "duplicate_vs_sts_ge_4": _precision_recall(cosine >= DEFAULT_DUPLICATE_THRESHOLD, gold >= 4),
        "theme_threshold": DEFAULT_THEME_THRESHOLD,
        "theme_vs_sts_ge_2_5": _precision_recall(cosine >= DEFAULT_THEME_THRESHOLD, gold >= 2.5),
    }


def bench_reviews(analyzer: OfflineAnalyzer, root: Path) -> dict[str, object]:
    with (root / FOLDERS[2] / "rq1-raw-data.csv").open(encoding="utf-8", errors="replace", newline="") as f:
        rows = [r for r in csv.DictReader(f) if (r.get("rating") or "").strip().isdigit()]
    polar = [r for r in rows if int(r["rating"]) != 3]
    positive = np.array([int(r["rating"]) >= 4 for r in polar])
    score = np.array([s.score for s in analyzer.sentiment([r["review"] for r in polar])])
    return {
        "dataset": "CLAP app reviews (the shipped sentiment model was trained on them: not unseen)",
        "n_polar": len(polar),
        "sentiment_auc_1_2_vs_4_5_stars": round(roc_auc(positive, score), 4),
    }


_PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
from shared.analyzers.offline import OfflineAnalyzer
a = OfflineAnalyzer()
t1 = time.perf_counter(); a.sentiment(["warm up"]); t2 = time.perf_counter()
a.embed(["warm up"]); t3 = time.perf_counter()
texts = json.loads(sys.stdin.read())
s0 = time.perf_counter(); a.sentiment(texts); s1 = time.perf_counter(); a.embed(texts); s2 = time.perf_counter()
single = []
for t in texts[:50]:
    u0 = time.perf_counter(); a.sentiment([t]); u1 = time.perf_counter(); a.embed([t]); u2 = time.perf_counter()
    single.append((u1 - u0, u2 - u1))
sent_single, emb_single = sorted(x for x, _ in single), sorted(y for _, y in single)

def peak_rss_mb():
    # ru_maxrss survives exec on Linux: a child forked from a big parent reports the
    # parent's size. VmHWM is reset by exec, so prefer it where /proc exists.
    try:
        with open("/proc/self/status") as f:
            hwm = next(line for line in f if line.startswith("VmHWM:"))
        return round(int(hwm.split()[1]) / 1024, 1)
    except (OSError, StopIteration):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps({
    "import_s": round(t1 - t0, 3), "first_sentiment_s": round(t2 - t1, 3), "first_embed_s": round(t3 - t2, 3),
    "cold_start_s": round(t3 - t0, 3),
    "sentiment_ms_per_item_batched": round(1000 * (s1 - s0) / len(texts), 3),
    "embed_ms_per_item_batched": round(1000 * (s2 - s1) / len(texts), 3),
    "sentiment_ms_single_median": round(1000 * sent_single[len(single) // 2], 3),
    "embed_ms_single_median": round(1000 * emb_single[len(single) // 2], 3),
    "peak_rss_mb": peak_rss_mb(),
}))
"""


def bench_runtime(root: Path, sample: int = 1000) -> dict[str, object]:
    """Cold start and latency in a fresh interpreter (nothing preloaded)."""
    texts = (root / FOLDERS[0] / "val_text.txt").read_text(encoding="utf-8").splitlines()[:sample]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], input=json.dumps(texts), capture_output=True, text=True, env=env, check=True
    )
    wall = time.perf_counter() - start
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s_incl_workload"] = round(wall, 3)
    result["items"] = len(texts)
    return result


_FUNCTION_PROBE = """
import json, sys, time, uuid
t0 = time.perf_counter()
import functions.{name}.main
from functions.{name}.agent import Context, decide
from shared.analyzers.offline import OfflineAnalyzer
from shared.events import DomainEvent, EventMetadata, EventType
t1 = time.perf_counter()
text = "The export keeps failing since the update, still no reply from support"
ids = uuid.UUID(int=1), uuid.UUID(int=2)
event = DomainEvent(id=uuid.uuid4(), type=EventType.FEEDBACK_CREATED, aggregate_type="feedback", aggregate_id=ids[0],
                    payload={{"feedback_id": str(ids[0]), "title": text, "body": ""}},
                    metadata=EventMetadata(project_id=ids[1], correlation_id=ids[0], depth=0, producer="bench"))
a = OfflineAnalyzer()
{context}
decide(event, context)
t2 = time.perf_counter()
with open("/proc/self/status") as f:
    hwm = next(line for line in f if line.startswith("VmHWM:"))
print(json.dumps({{"import_s": round(t1 - t0, 3), "first_decision_s": round(t2 - t1, 3),
                  "cold_start_s": round(t2 - t0, 3), "peak_rss_mb": round(int(hwm.split()[1]) / 1024, 1)}}))
"""
_CONTEXTS = {
    "sentiment": "context = Context(a.sentiment([text])[0], len(text))",
    "duplicate": "context = Context(a.embedding_model, a.embed([text])[0], 0.86, [])",
}


def bench_function_cold_start(runs: int = 5) -> dict[str, object]:
    """Fresh interpreters per agent, in turns: import its main module (as the
    platform does), then one analysis and one decision (the database round
    trip is not counted: it is the same with or without the offline models).

    One process says little on a shared machine (the same probe took 0.5 s
    on an idle one and over 1 s at a load average of 6), so each agent runs
    ``runs`` times and the median, best and worst are reported beside the
    1-minute load average at the start and the end."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in _CONTEXTS}
    load_before = os.getloadavg()[0]
    for _ in range(runs):
        for name, context in _CONTEXTS.items():
            code = _FUNCTION_PROBE.format(name=name, context=context)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
            samples[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out: dict[str, object] = {"runs": runs, "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    for name, rows in samples.items():
        out[name] = {key: _spread([row[key] for row in rows]) for key in rows[0]}
    return out


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": ordered[len(ordered) // 2], "best": ordered[0], "worst": ordered[-1]}


def training_cli(run: Callable[[Path, bool], dict[str, object]], out: Path, doc: str | None,
                 argv: list[str] | None = None) -> int:
    """The command line of a training script: report, and write ``out`` with ``--write``."""
    import argparse

    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {out.name} (default: only report)")
    args = parser.parse_args(argv)
    print(json.dumps(run(data_dir(), args.write), indent=2))
    return 0


def bench_duplicates(analyzer: OfflineAnalyzer, root: Path) -> dict[str, object]:
    import psycopg

    from signalsloop.benchmarks import duplicates, technical_duplicates, tracker_duplicates
    from signalsloop.operations.hybrid import scratch_database

    items = int(os.environ.get("SIGNALSLOOP_BENCH_ITEMS") or 100_000)
    left, right, gold = duplicates.sts_pairs(root, "train")
    with scratch_database(None) as url, psycopg.connect(url) as conn:
        cos, lex = duplicates.pair_features(conn, analyzer, left, right)
        refit = duplicates.fit_weights(cos, lex, gold >= duplicates.DUPLICATE_STS)
        report: dict[str, object] = {
            "weights_shipped": duplicates.hybrid_weights(conn),
            "weights_refit_on_stsb_train": [round(w, 4) for w in refit],
            "threshold_on_stsb_dev": duplicates.threshold_meaning(conn, analyzer, root, DEFAULT_DUPLICATE_THRESHOLD),
            "retrieval_on_stsb_dev": duplicates.retrieval(conn, analyzer, root),
            "retrieval_on_synthetic_technical_reports": technical_duplicates.run(conn, analyzer),
            "retrieval_on_real_trackers": tracker_duplicates.run(conn, analyzer),
        }
    # A database of its own: every scratch project above is rolled back, and
    # its rows stay behind as dead tuples in the tables and in the GIN and
    # HNSW indexes until a vacuum. After the real trackers (35,000 dead
    # embedding rows) the same lookups took twice as long.
    with scratch_database(None) as url, psycopg.connect(url) as conn:
        report["lookup"] = duplicates.lookup_latency(conn, analyzer, root, n=items)
    return report


def main() -> int:
    root = data_dir()
    missing = [name for name in FOLDERS if not (root / name).is_dir()]
    if missing:
        sys.stderr.write(
            f"bench_quality: data folder(s) {', '.join(missing)} not found under {root}; "
            "set SIGNALSLOOP_DATA_DIR to the shared data directory\n"
        )
        return 2
    from signalsloop.benchmarks import airline_tweets, train_sentiment, train_themes, tweeteval_test

    analyzer = OfflineAnalyzer()
    report = {
        "model": analyzer.model,
        "embedding_model": analyzer.embedding_model,
        "sentiment_unseen": train_sentiment.run(root, write=False),
        "sentiment_tweeteval_test": tweeteval_test.run() or f"skipped: {tweeteval_test.ENV} is not set",
        "sentiment_airline_tweets": airline_tweets.run() or f"skipped: {airline_tweets.ENV} is not set",
        "themes_unseen": train_themes.run(root, write=False),
        "similarity": bench_similarity(analyzer, root),
        "reviews_seen_in_training": bench_reviews(analyzer, root),
        "runtime": bench_runtime(root),
        "function_cold_start": bench_function_cold_start(),
        "duplicates": bench_duplicates(analyzer, root),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
