"""Retrieval metrics by cosine similarity: every query ranks the whole database, an item is relevant when it has the
query's class; mean average precision, precision at k, R-precision and the interpolated precision–recall curve,
computed on the device a chunk of queries at a time so memory stays at chunk × database."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sagejax.errors import DataError

RECALL_LEVELS = tuple(i / 10 for i in range(11))  # the 11-point interpolated curve


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; names rows that are zero or not finite (they have no direction to rank by)."""
    embeddings = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    bad = np.flatnonzero(~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0))
    if bad.size:
        raise DataError(f"{bad.size} embedding(s) are zero or not finite (first at row {bad[0]}); cannot rank them")
    return embeddings / norms


@functools.partial(jax.jit, static_argnames=("ks",))
def _chunk_metrics(queries, query_labels, database, database_labels, *, ks):
    """Per query of the chunk: AP, P@k for each k, R-precision, interpolated precision at RECALL_LEVELS, and
    whether any database item is relevant."""
    order = jnp.argsort(-(queries @ database.T), axis=1, stable=True)
    relevant = (database_labels[order] == query_labels[:, None]).astype(jnp.float32)
    hits = jnp.cumsum(relevant, axis=1)
    ranks = jnp.arange(1, database.shape[0] + 1, dtype=jnp.float32)
    precision = hits / ranks
    total = hits[:, -1]
    safe_total = jnp.maximum(total, 1.0)
    average_precision = jnp.sum(precision * relevant, axis=1) / safe_total
    at_k = jnp.stack([hits[:, k - 1] / k for k in ks], axis=1)
    r_index = jnp.maximum(total.astype(jnp.int32) - 1, 0)
    r_precision = jnp.take_along_axis(hits, r_index[:, None], axis=1)[:, 0] / safe_total
    # Interpolated precision at recall r: the best precision at any rank whose recall is >= r.
    best_after = jax.lax.cummax(precision, axis=1, reverse=True)
    recall = hits / safe_total[:, None]
    levels = jnp.asarray(RECALL_LEVELS, jnp.float32)
    first = jax.vmap(lambda row: jnp.searchsorted(row, levels - 1e-6, side="left"))(recall)
    curve = jnp.take_along_axis(best_after, jnp.minimum(first, database.shape[0] - 1), axis=1)
    return average_precision, at_k, r_precision, curve, total > 0


def retrieval_metrics(
    queries: np.ndarray,
    query_labels: np.ndarray,
    database: np.ndarray,
    database_labels: np.ndarray,
    *,
    ks=(1, 10, 100),
    chunk_size: int = 256,
) -> dict[str, float]:
    """{"mAP", "precision@<k>", "r_precision", "precision@recall=<r>", "queries"} over the queries that have at
    least one relevant database item (the others are counted in "queries_without_relevant"). Embeddings are
    L2-normalised here; ties in similarity keep database order."""
    if queries.shape[1:] != database.shape[1:]:
        raise DataError(f"queries {queries.shape} and database {database.shape} embeddings differ in size")
    if len(query_labels) != len(queries) or len(database_labels) != len(database):
        raise DataError("each query and database embedding needs one label")
    ks = tuple(int(k) for k in ks if k <= len(database))
    database = jnp.asarray(normalize(database))
    database_labels = jnp.asarray(database_labels)
    queries = normalize(queries)
    parts = []
    for start in range(0, len(queries), chunk_size):
        chunk = slice(start, start + chunk_size)
        outputs = _chunk_metrics(
            jnp.asarray(queries[chunk]), jnp.asarray(query_labels[chunk]), database, database_labels, ks=ks
        )
        parts.append(jax.device_get(outputs))
    average_precision, at_k, r_precision, curve, has_relevant = (np.concatenate(p) for p in zip(*parts))
    if not has_relevant.any():
        raise DataError("no query has a relevant (same-class) item in the database")
    keep = has_relevant
    metrics = {
        "mAP": float(average_precision[keep].mean()),
        "r_precision": float(r_precision[keep].mean()),
        "queries": float(keep.sum()),
        "queries_without_relevant": float((~keep).sum()),
    }
    metrics.update({f"precision@{k}": float(at_k[keep, i].mean()) for i, k in enumerate(ks)})
    metrics.update(
        {f"precision@recall={level:.1f}": float(curve[keep, i].mean()) for i, level in enumerate(RECALL_LEVELS)}
    )
    return metrics
