"""Duplicate search on long technical bug reports: a SYNTHETIC evaluation.

No public set of duplicate bug reports is in the shared data or in a package,
so this one is generated (fixed seed) to exercise the case the STS-B figures
cannot: reports that share a stack frame, a class or an exception rather than
wording. Each bug (a component's class, method, exception and version) gets
two reports by different "writers":

- the first pastes a stack trace: ``com.acme.sync.SyncQueue.drain(SyncQueue.java:212)``
  under ``java.lang.IllegalStateException``, amid framework frames every
  report shares;
- its duplicate names the exception and class in prose ("IllegalStateException
  from SyncQueue when ...") and quotes the version, in other words.

Distractor bugs reuse the same exceptions, components and framework frames, so
neither a shared exception nor shared boilerplate identifies a pair. The
duplicate looks for its first report among all reports: recall@5 of cosine
only, of the lexical side before identifier parts (the english parser alone)
and after, of the fused search (``match_feedback_hybrid``, in its order and
its candidates by calibrated score, the order before 20261202000801), and of the
character TF-IDF 3-5 baseline (scikit-learn). Figures here show the direction
of a change, not what a real tracker would score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import psycopg

from shared.analyzers.offline import OfflineAnalyzer
from signalsloop.operations.hybrid import scratch_project, split_text

COMPONENTS = ("export", "sync", "auth", "billing", "search", "media", "storage", "notify", "report", "settings")
NOUNS = ("Writer", "Queue", "Manager", "Renderer", "Cache", "Client", "Resolver", "Parser", "Scheduler", "Adapter",
         "Handler", "Provider", "Factory", "Store", "Loader")
PREFIXES = ("Csv", "Token", "Invoice", "Thumbnail", "Session", "Index", "Upload", "Push", "Pdf", "Locale", "Blob",
            "Batch", "Delta", "Quota", "Webhook")
METHODS = ("flush", "drain", "refresh", "render", "resolve", "parse", "schedule", "load", "commit", "encode",
           "open", "close", "apply", "merge", "dispatch")
EXCEPTIONS = ("java.lang.NullPointerException", "java.lang.IllegalStateException",
              "java.lang.IndexOutOfBoundsException", "java.util.ConcurrentModificationException",
              "java.util.concurrent.TimeoutException", "java.io.IOException", "java.lang.IllegalArgumentException",
              "java.lang.ClassCastException")
FRAMES = ("android.os.Handler.dispatchMessage(Handler.java:106)", "android.os.Looper.loop(Looper.java:223)",
          "java.lang.Thread.run(Thread.java:923)", "kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:106)",
          "com.acme.core.TaskRunner.execute(TaskRunner.java:57)")
SYMPTOMS = ("the app crashes", "nothing happens", "the screen freezes", "an error dialog appears",
            "the request times out", "the app closes")
ACTIONS = ("tapping save", "opening the list", "syncing over wifi", "exporting a large file", "logging in again",
           "switching accounts", "resuming from background", "rotating the phone")


def _bug(rng: np.random.Generator) -> dict[str, str]:
    component = COMPONENTS[rng.integers(len(COMPONENTS))]
    cls = PREFIXES[rng.integers(len(PREFIXES))] + NOUNS[rng.integers(len(NOUNS))]
    return {"component": component, "cls": cls, "method": METHODS[rng.integers(len(METHODS))],
            "exception": EXCEPTIONS[rng.integers(len(EXCEPTIONS))], "line": str(int(rng.integers(20, 900))),
            "version": f"{rng.integers(1, 6)}.{rng.integers(0, 20)}.{rng.integers(0, 10)}",
            "symptom": SYMPTOMS[rng.integers(len(SYMPTOMS))], "action": ACTIONS[rng.integers(len(ACTIONS))]}


def _trace_report(b: dict[str, str], rng: np.random.Generator) -> str:
    frames = [FRAMES[i] for i in sorted(rng.choice(len(FRAMES), size=3, replace=False).tolist())]
    where = f"com.acme.{b['component']}.{b['cls']}.{b['method']}({b['cls']}.java:{b['line']})"
    return (f"Crash in {b['component']} on {b['version']}\n"
            f"Steps to reproduce: {b['action']}, then {b['symptom']}.\n"
            f"FATAL EXCEPTION: main\n{b['exception']}: unexpected state\n\tat {where}\n"
            + "".join(f"\tat {f}\n" for f in frames))


_PROSE = (
    "{short} from {cls} since {version}\nEvery time I try {action} {symptom}; logcat says {short} thrown by "
    "{cls}.{method}. Worked before I updated to {version}.",
    "{component}: {symptom} when {action}\nOn {version} I get a {short} in {cls}.{method}() and have to restart.",
    "{cls}.{method} throws {short}\nReproducible on {version}: {action}. Expected it to work, actual: {symptom}.",
    "Since updating to {version}, {symptom}\nHappens while {action}. The log points at {cls} ({short}).",
)


def _prose_report(b: dict[str, str], rng: np.random.Generator) -> str:
    short = b["exception"].rsplit(".", 1)[1]
    return _PROSE[int(rng.integers(len(_PROSE)))].format(short=short, **b)


def _report(b: dict[str, str], rng: np.random.Generator) -> str:
    return _trace_report(b, rng) if rng.random() < 0.5 else _prose_report(b, rng)


def corpus(pairs: int = 150, distractors: int = 450, seed: int = 0) -> tuple[list[str], list[tuple[int, int]]]:
    """Texts and (duplicate, original) index pairs: the original is a trace or
    prose report, its duplicate the other kind half the time, each written
    with its own symptom and steps."""
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    truth: list[tuple[int, int]] = []
    for _ in range(pairs):
        bug = _bug(rng)
        texts.append(_report(bug, rng))
        again = {**bug, "symptom": SYMPTOMS[rng.integers(len(SYMPTOMS))], "action": ACTIONS[rng.integers(len(ACTIONS))]}
        texts.append(_prose_report(again, rng) if texts[-1].startswith("Crash in") else _report(again, rng))
        truth.append((len(texts) - 1, len(texts) - 2))
    texts.extend(_report(_bug(rng), rng) for _ in range(distractors))
    return texts, truth


def _lexeme_sets(conn: psycopg.Connection, texts: Sequence[str], expression: str) -> list[set[str]]:
    parts = [split_text(t) for t in texts]
    rows = conn.execute(
        f"select tsvector_to_array({expression}) from unnest(%s::text[], %s::text[]) with ordinality as u(t, b, n)"
        " order by n", ([p[0] for p in parts], [p[1] for p in parts])).fetchall()
    return [set(r[0]) for r in rows]


def _overlaps(sets: list[set[str]], query: int) -> np.ndarray:
    q = sets[query]
    return np.array([len(q & s) / max(np.sqrt(len(q) * len(s)), 1e-9) for s in sets])


def top_k(score: np.ndarray, query: int, k: int) -> list[int]:
    """The indices of the ``k`` highest scores, ``query`` itself left out, ties in index order."""
    score = score.astype(np.float64).copy()
    score[query] = -np.inf
    return [int(i) for i in np.argsort(-score, kind="stable")[:k]]


def _char_tfidf(texts: Sequence[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    m = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit_transform(texts)
    sims = (m @ m.T).toarray()
    return sims


#: hybrid_weights() before identifier parts and the weighted overlap (20261201000800).
OLD_WEIGHTS = (0.6903, 0.3466, 0.0099)


def run(conn: psycopg.Connection, analyzer: OfflineAnalyzer, k: int = 5) -> dict[str, object]:
    """recall@k of each side. "old": the plain overlap of the english parser's
    lexemes, fused with the old weights over all reports (no candidate pools),
    as the search scored before this change; "new": the real
    ``match_feedback_hybrid`` and its weighted overlap of identifier-aware lexemes."""
    from signalsloop.benchmarks.duplicates import fused_top, lexeme_shares, lexical_top

    w_cos, w_lex, w_bias = OLD_WEIGHTS
    texts, truth = corpus()
    vectors = analyzer.embed_array(texts)
    old = _lexeme_sets(conn, texts, "to_tsvector('english', t) || to_tsvector('english', b)")
    char = _char_tfidf(texts)
    hits = {"cosine_only": 0, "old_lexical_only": 0, "new_lexical_only": 0, "old_fused": 0,
            "new_fused_ordered_by_score": 0, "new_fused": 0, "char_tfidf_3_5_baseline": 0}
    with scratch_project(conn, analyzer.embedding_model) as project:
        project.add(texts, vectors)
        project.matches(0, vectors[0], k)  # builds the vector index and the statistics
        shares = lexeme_shares(conn)
        for query, partner in truth:
            cos, lex_old = vectors @ vectors[query], _overlaps(old, query)
            hits["cosine_only"] += partner in top_k(cos, query, k)
            hits["old_lexical_only"] += partner in top_k(lex_old, query, k)
            hits["new_lexical_only"] += partner in lexical_top(conn, project.ids, query, k, shares)
            hits["old_fused"] += partner in top_k(w_cos * cos + w_lex * lex_old + w_bias, query, k)
            fused, by_score = fused_top(project, query, vectors[query], k)
            hits["new_fused"] += partner in fused
            hits["new_fused_ordered_by_score"] += partner in by_score
            hits["char_tfidf_3_5_baseline"] += partner in top_k(char[query], query, k)
    return {"dataset": f"SYNTHETIC technical bug reports: {len(truth)} duplicate pairs among {len(texts)} reports",
            **{f"recall_at_{k}_{name}": round(v / len(truth), 4) for name, v in hits.items()}}
