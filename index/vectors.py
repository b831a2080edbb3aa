"""FAISS at the boundary: index types chosen by size, search parameters, vectors in and ids out.

Cosine similarity is the inner product of L2-normalised vectors, so every index is built with
METRIC_INNER_PRODUCT and every vector is normalised float32 before FAISS sees it (open_clip's
`normalize=True` does the same on the model side). Ids are the store's own int64 ids, added
with `add_with_ids`; FAISS's `-1` labels for empty result slots never leave this module.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .errors import IndexInputError

# Exact search reads every vector for every query; up to ~100k vectors that still answers in
# milliseconds and needs no training, so it is the default below this size.
EXACT_LIMIT = 100_000
EXACT_FACTORY = "IDMap2,Flat"
# Tuned search parameters aim at recall@10 0.97 against exact search so that new queries keep
# a 0.95 floor: the 256-query estimate is about a point off either way.
TUNE_TARGET = 0.97
TUNE_QUERIES = 256
ADD_CHUNK = 100_000
# With a tag filter that leaves at most this many candidates, their vectors are scored exactly:
# an IVF or HNSW search restricted by a selector may miss rare items entirely.
FILTER_EXACT_LIMIT = 20_000


def faiss():
    import faiss as module  # imported on use: `atelier --help` must not load it
    return module


def as_vectors(vectors, dim: int) -> np.ndarray:
    """Rows as L2-normalised, C-contiguous float32 of width `dim`; refuses NaN, inf and zeros."""
    array = np.array(vectors, dtype=np.float32, copy=True, ndmin=2, order="C")
    if array.ndim != 2 or array.shape[1] != dim:
        raise IndexInputError(f"vectors have shape {array.shape}; this index takes (n, {dim})")
    if not np.isfinite(array).all():
        raise IndexInputError("vectors contain NaN or infinity; check the embedder's output")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise IndexInputError("a vector is all zeros, which has no direction to compare by cosine")
    array /= norms
    return array


def as_ids(ids) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def ivf_lists(n: int) -> int:
    """The faiss wiki's rule of thumb, 4 * sqrt(n) inverted lists, as a power of two."""
    return int(2 ** round(math.log2(max(4 * math.sqrt(max(n, 1)), 64))))


def choose_factory(n: int, dim: int) -> str:
    """The index type for `n` vectors: exact up to EXACT_LIMIT, IVF with 8-bit codes beyond.

    IVF over HNSW because it removes ids in place (HNSW cannot) and builds in minutes on a
    few cores; SQ8 codes keep a quarter of the bytes of float32 at a recall cost of about a
    point at the nprobe that `tune` picks.
    """
    return EXACT_FACTORY if n <= EXACT_LIMIT else approximate_factory(n)


def approximate_factory(n: int) -> str:
    return f"IVF{ivf_lists(n)},SQ8"


def new_index(factory: str, dim: int):
    """An empty index for `factory`, wrapped in an id map where the type keeps no ids itself."""
    f = faiss()
    factory = factory.strip()
    try:
        index = f.index_factory(dim, factory, f.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1].split(": ")[-1]
        raise IndexInputError(
            f"FAISS cannot build index type {factory!r} ({reason}); give a factory string such "
            f"as '{EXACT_FACTORY}', 'IVF4096,SQ8', 'IVF1024,Flat' or 'IDMap2,HNSW32,Flat'"
        ) from None
    if f.try_extract_index_ivf(index) is None and not factory.startswith("IDMap"):
        # Flat, HNSW and PQ indexes number vectors 0..n-1; stable ids need the id map.
        factory = f"IDMap2,{factory}"
        index = f.index_factory(dim, factory, f.METRIC_INNER_PRODUCT)
    prepare(index)
    return index, factory


def prepare(index) -> None:
    """IVF indexes keep a hash map from id to list entry, so vectors can be read back by id
    (for MMR and rebuilds) and removed by id."""
    ivf = faiss().try_extract_index_ivf(index)
    if ivf is not None and ivf.direct_map.type != faiss().DirectMap.Hashtable:
        ivf.set_direct_map_type(faiss().DirectMap.Hashtable)


def describe(index) -> dict:
    """What stats show about an index: its FAISS type and the knobs that matter."""
    f = faiss()
    info = {"type": type(f.downcast_index(index)).__name__, "ntotal": int(index.ntotal)}
    ivf = f.try_extract_index_ivf(index)
    if ivf is not None:
        info.update(nlist=int(ivf.nlist), nprobe=int(ivf.nprobe))
    hnsw = _hnsw(index)
    if hnsw is not None:
        info.update(efSearch=int(hnsw.efSearch))
    return info


def _hnsw(index):
    f = faiss()
    inner = f.downcast_index(index)
    while hasattr(inner, "index") and not hasattr(inner, "hnsw"):
        inner = f.downcast_index(inner.index)
    return getattr(inner, "hnsw", None)


def train(index, vectors: np.ndarray, seed: int = 0) -> None:
    """Train on a seeded sample: k-means needs 30 to 256 points per list (faiss wiki), and
    more only costs time."""
    if index.is_trained:
        return
    ivf = faiss().try_extract_index_ivf(index)
    cap = training_cap(index)
    if len(vectors) > cap:
        rows = np.sort(np.random.default_rng(seed).choice(len(vectors), cap, replace=False))
        vectors = vectors[rows]
    if ivf is not None and len(vectors) < ivf.nlist:
        raise IndexInputError(
            f"an index with {ivf.nlist} inverted lists needs at least that many vectors to "
            f"train; there are {len(vectors)}: use '{EXACT_FACTORY}' or fewer lists")
    index.train(vectors)


def training_cap(index) -> int:
    """How many vectors `train` uses at most: a sample beyond this teaches k-means nothing."""
    ivf = faiss().try_extract_index_ivf(index)
    return 64 * ivf.nlist if ivf is not None else 65_536


def set_search_params(index, params: str) -> None:
    """Apply a FAISS ParameterSpace string such as 'nprobe=32' or 'efSearch=128'."""
    if not params:
        return
    try:
        faiss().ParameterSpace().set_index_parameters(index, params)
    except RuntimeError:
        raise IndexInputError(
            f"search parameters {params!r} do not fit index type "
            f"{describe(index)['type']}; IVF takes 'nprobe=N', HNSW 'efSearch=N'") from None


def parse_search_params(params: str) -> str:
    params = (params or "").replace(" ", "")
    if params and not re.fullmatch(r"[A-Za-z_]+=[0-9.]+(,[A-Za-z_]+=[0-9.]+)*", params):
        raise IndexInputError(f"search parameters {params!r} are not 'name=value[,name=value]', "
                              "e.g. 'nprobe=32' or 'efSearch=128'")
    return params


def build(factory: str, dim: int, vectors: np.ndarray, ids: np.ndarray,
          search_params: str | None = None, seed: int = 0):
    """A trained, filled index of type `factory`: (index, factory as built, search params).

    Without `search_params`, they are tuned for recall: a seeded sample of the vectors is held
    out while the rest are added, serves as queries, and is added last. Held-out vectors are
    what new data looks like to the index; stored ones would overstate recall, since a graph
    index links each stored vector to its neighbours."""
    index, factory = new_index(factory, dim)
    if len(vectors) == 0:
        return index, factory, parse_search_params(search_params or "")
    train(index, vectors, seed)
    held = np.array([], dtype=np.int64)
    if search_params is None:
        count = min(TUNE_QUERIES, len(vectors) // 4)
        held = np.sort(np.random.default_rng(seed).choice(len(vectors), count, replace=False))
    keep = np.ones(len(vectors), dtype=bool)
    keep[held] = False
    # In slices, so that leaving rows out never copies the whole array.
    for start in range(0, len(vectors), ADD_CHUNK):
        part = slice(start, start + ADD_CHUNK)
        index.add_with_ids(np.ascontiguousarray(vectors[part][keep[part]]), ids[part][keep[part]])
    if search_params is None:
        search_params = tune(index, vectors, ids, held)
    params = parse_search_params(search_params)
    set_search_params(index, params)
    if len(held):
        index.add_with_ids(np.ascontiguousarray(vectors[held]), ids[held])
    return index, factory, params


def tune(index, vectors: np.ndarray, ids: np.ndarray, held: np.ndarray,
         target: float = TUNE_TARGET, k: int = 10) -> str:
    """The cheapest nprobe (IVF) or efSearch (HNSW) whose recall@k against exact search
    reaches `target`, the queries being the rows `held` out of the index (which holds every
    other row); '' where there is nothing to tune. Tuning by measured recall rather than a
    fixed value follows autofaiss: the right value depends on how the data clusters. With too
    little data to measure, the most thorough setting."""
    if tunable(index) is None:
        return ""
    queries = np.ascontiguousarray(vectors[held])
    truth = None
    if len(held) >= 10 and len(vectors) - len(held) >= k:
        # Exact neighbours among the rows the index holds: search all rows for enough extra
        # results to drop the held-out ones.
        _, rows = exact_knn(vectors, queries, k + len(held))
        out = np.zeros(len(vectors), dtype=bool)
        out[held] = True
        truth = [ids[r[~out[r]][:k]] for r in rows]
    return tune_against(index, queries, truth, target, k)


def tunable(index) -> tuple[str, list[int]] | None:
    """The search parameter of an approximate index and the values `tune` tries, cheapest
    first; None for an exact index."""
    ivf = faiss().try_extract_index_ivf(index)
    if ivf is not None:
        steps = (1, 2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 384,
                 512)
        return "nprobe", [v for v in steps if v < ivf.nlist] + [ivf.nlist]
    if _hnsw(index) is not None:
        return "efSearch", [16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024]
    return None


def tune_against(index, queries: np.ndarray, truth, target: float = TUNE_TARGET,
                 k: int = 10) -> str:
    """`tune` given the queries and each one's exact top-k ids among what the index holds
    (`truth`, None where there was too little data to measure: then the most thorough
    setting)."""
    knob = tunable(index)
    if knob is None:
        return ""
    name, values = knob
    if truth is None:
        return f"{name}={values[-1]}"
    for value in values:
        setting = f"{name}={value}"
        set_search_params(index, setting)
        _, found = index.search(queries, k)
        if np.mean([len(set(a) & set(b)) for a, b in zip(found, truth)]) / k >= target:
            break
    return setting


def exact_knn(database: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product top-k over rows of `database`: (scores, row numbers)."""
    f = faiss()
    k = min(k, len(database))
    if k == 0:
        return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
    return f.knn(np.ascontiguousarray(queries, dtype=np.float32),
                 np.ascontiguousarray(database, dtype=np.float32), k,
                 metric=f.METRIC_INNER_PRODUCT)


def search(index, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) per query, limited to the `allowed` ids when given."""
    f = faiss()
    if allowed is not None:
        if len(allowed) == 0:
            return (np.empty((len(queries), 0), np.float32),
                    np.empty((len(queries), 0), np.int64))
        if len(allowed) <= FILTER_EXACT_LIMIT:
            scores, rows = exact_knn(reconstruct(index, allowed), queries, k)
            return scores, np.where(rows >= 0, allowed[np.maximum(rows, 0)], -1)
        selector = f.IDSelectorBatch(allowed)
        ivf, hnsw = f.try_extract_index_ivf(index), _hnsw(index)
        # Search parameters replace the index's own settings, so carry those over.
        if ivf is not None:
            params = f.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
        elif hnsw is not None:
            params = f.SearchParametersHNSW(sel=selector, efSearch=hnsw.efSearch)
        else:
            params = f.SearchParameters(sel=selector)
        return index.search(queries, k, params=params)
    return index.search(queries, min(k, max(index.ntotal, 1)))


def reconstruct(index, ids: np.ndarray) -> np.ndarray:
    """The stored vectors of `ids` (exact for Flat codes, decoded for SQ and PQ codes)."""
    if len(ids) == 0:
        return np.empty((0, index.d), np.float32)
    return index.reconstruct_batch(as_ids(ids))


def remove(index, ids: np.ndarray) -> bool:
    """Remove ids in place; False where the index type cannot (HNSW), so the caller rebuilds."""
    f = faiss()
    ids = as_ids(ids)
    if f.try_extract_index_ivf(index) is not None:
        # IVF's id hash map removes only through an explicit id array.
        selector = f.IDSelectorArray(ids)
    else:
        selector = f.IDSelectorBatch(ids)
    try:
        index.remove_ids(selector)
    except RuntimeError:
        return False
    return True


def write(index, path) -> None:
    faiss().write_index(index, str(path))


def read(path):
    index = faiss().read_index(str(path))
    prepare(index)
    return index
