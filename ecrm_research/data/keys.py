"""Fast joins, look-ups and duplicate checks on key columns (ids).

The canonical tables hold ids as ``string[pyarrow]``. Hashing millions of strings is the costly
part of every join, so these functions work on integers when they can: fixed-width text ids
(``C00916478``, ``536365``) become integers read straight from the Arrow buffers
(:func:`int_keys`), joined by a sort-merge; other text is dictionary-encoded by pyarrow; runs of
equal consecutive values (the lines of one order) are looked up once.

Public names: :func:`key_positions`, :func:`key_runs`, :func:`key_isin`, :func:`key_codes`,
:func:`int_codes`, :func:`duplicated`, :func:`arrow_strings`, and the fixed-width-id helpers
:func:`fixed_width_bytes`, :func:`int_keys`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def arrow_strings(values: pd.Series | pd.Index | np.ndarray):
    """The values as a pyarrow string array (zero-copy for ``string[pyarrow]``), or ``None``
    when they are not text (numbers, mixed objects): callers then fall back to pandas.

    Arrow-backed arrays hand over their buffers through the public ``__arrow_array__`` protocol.
    """
    arr = getattr(values, "array", values)
    if isinstance(arr, pd.arrays.ArrowExtensionArray):
        chunked = arr.__arrow_array__()
        if pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type):
            return chunked
    if isinstance(getattr(values, "dtype", None), pd.StringDtype):
        return pa.chunked_array([pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)])
    return None


def _run_heads(arr) -> np.ndarray:
    """Positions where a value differs from the previous one (run starts; 0 always)."""

    n = len(arr)
    if n < 2:
        return np.arange(n)
    a = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
    same = pc.fill_null(pc.equal(a.slice(1), a.slice(0, n - 1)), False)
    return np.r_[0, np.flatnonzero(~same.to_numpy(zero_copy_only=False)) + 1]


def fixed_width_bytes(arr) -> list[tuple[np.ndarray, np.ndarray | None]] | None:
    """The bytes of a text array whose present values all have the same length ``L``.

    Returns one ``(b, valid)`` per chunk: ``b`` is an ``(n_present, L)`` uint8 view of the
    chunk's data buffer (no copy) and ``valid`` the mask of present rows (``None`` when none
    is missing); ``None`` when some value has another length or a missing value holds bytes.
    """

    parts, width = [], None
    for a in getattr(arr, "chunks", [arr]):
        n = len(a)
        if n == 0:
            continue
        if not (pa.types.is_string(a.type) or pa.types.is_large_string(a.type)):
            return None
        odt = np.dtype(np.int64 if pa.types.is_large_string(a.type) else np.int32)
        off = np.frombuffer(a.buffers()[1], dtype=odt, count=n + 1, offset=a.offset * odt.itemsize)
        lens = np.diff(off)
        valid = None
        if a.null_count:
            valid = a.is_valid().to_numpy(zero_copy_only=False)
            if lens[~valid].any():
                return None
            lens = lens[valid]
        if len(lens):
            width = int(lens[0]) if width is None else width
            if not (lens == width).all():
                return None
        raw = np.frombuffer(a.buffers()[2], dtype=np.uint8, count=len(lens) * (width or 0),
                            offset=int(off[0])) if len(lens) else np.zeros(0, dtype=np.uint8)
        parts.append((raw.reshape(len(lens), width or 0), valid))
    if not width or width > 64:
        return None
    return [(b.reshape(len(b), width), v) for b, v in parts]


def int_keys(*arrays) -> list[tuple[np.ndarray, np.ndarray | None]] | None:
    """Text ids of several arrays as comparable uint64 integers, when that is exact.

    Most shop ids have a fixed width (``C00916478``, ``O000000042``, ``536365``). When all
    ids of all arrays have the same byte length ``L`` and at most 8 byte positions differ
    between them (the others hold the same byte in every id), those positions read big-endian
    are an integer per id that is equal exactly when the ids are equal and ordered as the ids
    are (UTF-8 byte order is code-point order). Integer joins and sorts are several times
    faster than hashing strings. Returns ``[(ints, valid), ...]`` per array (``valid`` as in
    :func:`fixed_width_bytes`; missing rows hold 0), or ``None`` when not applicable.
    """
    views = [fixed_width_bytes(a) for a in arrays]
    if any(v is None for v in views):
        return None
    blocks = [b for v in views for b, _ in v if len(b)]
    widths = {b.shape[1] for b in blocks}
    if len(widths) != 1:
        return None
    width = widths.pop()
    ref = blocks[0][0].copy()
    # bytes before the last 8 must be the same in every id (checked column by column: cheap,
    # and ids usually differ only at the end); then the last 8 bytes are read in place
    lead = max(width - 8, 0)
    kept = np.arange(width)
    in_place = width >= 8 and not any((b[:, j] != ref[j]).any() for j in range(lead) for b in blocks)
    if width > 8 and not in_place:
        varying = np.zeros(width, dtype=bool)
        for b in blocks:
            varying |= (b != ref).any(axis=0)
        kept = np.flatnonzero(varying)
        if len(kept) > 8:
            return None

    def to_ints(b: np.ndarray) -> np.ndarray:
        if in_place:
            flat = np.ascontiguousarray(b).reshape(-1)  # a view: b is a reshaped buffer
            words = np.ndarray(shape=(len(b),), dtype=">u8", buffer=flat, offset=lead, strides=(width,))
            return words.astype(np.uint64)
        word = np.zeros((len(b), 8), dtype=np.uint8)
        word[:, 8 - len(kept):] = b[:, kept]
        return word.view(">u8").ravel().astype(np.uint64)

    out = []
    for parts in views:
        flat = np.concatenate([to_ints(b) for b, _ in parts]) if parts else np.zeros(0, dtype=np.uint64)
        if all(v is None for _, v in parts):
            out.append((flat, None))
            continue
        mask = np.concatenate([np.ones(len(b), dtype=bool) if v is None else v for b, v in parts])
        full = np.zeros(len(mask), dtype=np.uint64)
        full[mask] = flat
        out.append((full, mask))
    return out


def _int_run_heads(vals: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Run starts of integer ids (a missing value differs from any present one)."""
    if len(vals) < 2:
        return np.arange(len(vals))
    change = vals[1:] != vals[:-1]
    if valid is not None:
        change |= valid[1:] != valid[:-1]
    return np.r_[0, np.flatnonzero(change) + 1]


def _int_runs(vals: np.ndarray, vvalid: np.ndarray | None, keys: np.ndarray, kvalid: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray, bool]:
    """:func:`key_runs` on integer ids: a sort-merge join (first occurrence wins).

    Keys already in increasing order (orders exported by id) need no sort; runs of equal
    values (the lines of one order) are looked up once.
    """
    heads = _int_run_heads(vals, vvalid)
    vh = vals[heads]
    krow = np.arange(len(keys), dtype=np.int64) if kvalid is None else np.flatnonzero(kvalid)
    ks = keys if kvalid is None else keys[kvalid]
    if len(ks) > 1 and not (ks[1:] > ks[:-1]).all():
        by = np.argsort(ks, kind="stable")  # equal keys keep their order: the first comes first
        krow, ks = krow[by], ks[by]
        unique = not (ks[1:] == ks[:-1]).any()
    else:
        unique = True
    if len(ks):
        at = np.minimum(np.searchsorted(ks, vh), len(ks) - 1)
        hit = ks[at] == vh
        if vvalid is not None:
            hit &= vvalid[heads]
        pos_h = np.where(hit, krow[at], -1)
    else:
        pos_h = np.full(len(vh), -1, dtype=np.int64)
    return heads, pos_h.astype(np.int64, copy=False), unique


def key_positions(values: pd.Series | pd.Index | np.ndarray, keys: pd.Series | pd.Index | np.ndarray, *,
                  return_unique: bool = False) -> np.ndarray | tuple[np.ndarray, bool]:
    """Row position in ``keys`` of each of ``values`` (-1 when absent or missing).

    A vectorised join on key columns: ``keys`` should be unique (the first occurrence wins
    otherwise). Fixed-width text ids become integers (:func:`int_keys`) and are joined by a
    sort-merge (no sort when ``keys`` are stored in increasing order); other text keys
    (``string[pyarrow]``) are dictionary-encoded together by pyarrow. Runs of equal
    consecutive values (the lines of one order) are looked up once, so order lines stored
    order by order cost little more than the orders themselves.

    Parameters
    ----------
    values, keys : Series, Index or ndarray

    return_unique : bool
        Also return whether ``keys`` are unique (free: it falls out of the encoding).

    Returns
    -------
    ndarray of int64
        Same length as ``values`` (with ``return_unique``: a tuple ``(positions, unique)``).

    Examples
    --------
    >>> ID = "string[pyarrow]"
    >>> key_positions(pd.Series(["b", "a", "a", None, "z"], dtype=ID), pd.Series(["a", "b"], dtype=ID)).tolist()
    [1, 0, 0, -1, -1]
    """
    starts, pos, unique = key_runs(values, keys, return_unique=True)
    n = len(values)
    out = np.repeat(pos, np.diff(np.r_[starts, n])) if len(starts) < n else pos
    return (out, unique) if return_unique else out


def key_runs(values: pd.Series | pd.Index | np.ndarray, keys: pd.Series | pd.Index | np.ndarray, *,
             return_unique: bool = False) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, bool]:
    """:func:`key_positions` per run of equal consecutive values (the lines of one order).

    Returns ``(starts, positions)``: the row where each run begins and the run's position in
    ``keys`` (-1 when absent or missing); with ``return_unique`` also whether ``keys`` are
    unique. Per-run sums (``numpy.add.reduceat(x, starts)``) then need no per-line position
    array, which is the costly part of an order-line join at 10 million lines.

    Examples
    --------
    >>> ID = "string[pyarrow]"
    >>> starts, pos = key_runs(pd.Series(["b", "b", "a", None], dtype=ID), pd.Series(["a", "b"], dtype=ID))
    >>> starts.tolist(), pos.tolist()
    ([0, 2, 3], [1, 0, -1])
    """

    v, k = arrow_strings(values), arrow_strings(keys)
    n_keys = len(keys)
    if v is None or k is None:
        kidx = pd.Index(np.asarray(keys, dtype=object))
        vidx = pd.Index(np.asarray(values, dtype=object))
        unique = True
        if not kidx.is_unique:
            unique = False
            kidx = pd.Index([x if not d else object() for x, d in zip(kidx, kidx.duplicated(keep="first"))],
                            dtype=object)  # later copies never match
        pos = kidx.get_indexer(vidx)
        pos[np.asarray(pd.isna(vidx), dtype=bool)] = -1
        starts = np.arange(len(vidx), dtype=np.int64)
        return (starts, pos.astype(np.int64), unique) if return_unique else (starts, pos.astype(np.int64))
    ints = int_keys(v, k)
    if ints is not None:
        (iv, vvalid), (ik, kvalid) = ints
        starts, pos, unique = _int_runs(iv, vvalid, ik, kvalid)
        return (starts, pos, unique) if return_unique else (starts, pos)
    heads = _run_heads(v)
    vh = pc.take(v, pa.array(heads)) if len(heads) < len(v) else v
    chunks = [c if c.type == pa.large_string() else c.cast(pa.large_string())
              for c in list(getattr(k, "chunks", [k])) + list(getattr(vh, "chunks", [vh]))]
    both = pa.chunked_array(chunks, type=pa.large_string())
    enc = pc.dictionary_encode(both).combine_chunks()
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    kc, vc = codes[:n_keys], codes[n_keys:]
    pos_of_code = np.full(len(enc.dictionary) + 1, -1, dtype=np.int64)  # last slot: missing (-1)
    order = np.arange(n_keys, dtype=np.int64)
    ok = kc >= 0
    pos_of_code[kc[ok][::-1]] = order[ok][::-1]  # the first occurrence is written last and wins
    pos = pos_of_code[vc]
    heads = np.asarray(heads, dtype=np.int64)
    if return_unique:
        return heads, pos, bool(not len(kc[ok]) or np.bincount(kc[ok]).max() <= 1)
    return heads, pos


def _one_chunk(arr, type_):
    arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
    return arr if arr.type == type_ else arr.cast(type_)


def key_isin(values: pd.Series | pd.Index | np.ndarray, keys: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """Boolean array: is each of ``values`` among ``keys`` (missing values are not)?

    Vectorised like :func:`key_positions`; :meth:`pandas.Series.isin` on ``string[pyarrow]``
    builds a Python list of the keys and takes seconds per million rows.
    """
    v, k = arrow_strings(values), arrow_strings(keys)
    if v is None or k is None:
        return np.asarray(pd.Series(np.asarray(values, dtype=object)).isin(np.asarray(keys, dtype=object))
                          & pd.notna(np.asarray(values, dtype=object)), dtype=bool)

    ints = int_keys(v, k)
    if ints is not None:
        (iv, vvalid), (ik, kvalid) = ints
        starts, pos, _ = _int_runs(iv, vvalid, ik, kvalid)
        return np.repeat(pos >= 0, np.diff(np.r_[starts, len(iv)]))
    heads = _run_heads(v)
    n = len(v)
    if len(heads) < 0.7 * n:

        hit = pc.is_in(pc.take(v, pa.array(heads)), value_set=_one_chunk(k, v.type), skip_nulls=True)
        return np.repeat(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), np.diff(np.r_[heads, n]))
    hit = pc.is_in(v, value_set=_one_chunk(k, v.type), skip_nulls=True)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


def key_codes(values: pd.Series | pd.Index | np.ndarray, *, sort: bool = True) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of key values (-1 for missing) and the distinct keys, for group-bys on ints.

    With ``sort=True`` (the default) the codes follow the sorted order of the keys as text
    (code 0 = the smallest id), so results grouped by code come out sorted by id exactly as
    ``groupby(id)`` would sort them.

    Returns
    -------
    codes : ndarray of int64
    uniques : Index
        ``uniques[codes[i]] == values[i]``.
    """
    arr = arrow_strings(values) if isinstance(values, (pd.Series, pd.Index)) else None
    ints = int_keys(arr) if arr is not None else None
    if ints is not None:  # fixed-width text ids: factorize integers, then fetch one name per code
        (iv, valid), = ints
        present = np.arange(len(iv)) if valid is None else np.flatnonzero(valid)
        c, u = pd.factorize(iv[present], sort=False)
        if sort:  # sorting the distinct integers is cheaper than factorize(sort=True)
            rank = np.empty(len(u), dtype=np.int64)
            rank[np.argsort(u)] = np.arange(len(u))
            c = rank[c]
        first = np.empty(int(c.max()) + 1 if len(c) else 0, dtype=np.int64)
        first[c[::-1]] = present[::-1]  # the first row of each code is written last
        codes = np.full(len(iv), -1, dtype=np.int64)
        codes[present] = c
        return codes, pd.Index(pd.Series(values).iloc[first].array)
    codes, uniques = pd.factorize(values, sort=sort, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def int_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes ``0..n-1`` of a column (missing values share one code) and ``n``.

    Equal values get equal codes, which is all a duplicate check needs. Arrow text is
    dictionary-encoded by pyarrow, run by run (the lines of one order are encoded once);
    categoricals use their codes; small non-negative integers are their own codes.
    """

    if isinstance(values.dtype, pd.CategoricalDtype):
        c = values.cat.codes.to_numpy().astype(np.int64)
        n = len(values.cat.categories)
        return np.where(c < 0, n, c), n + 1
    arr = arrow_strings(values)
    ints = int_keys(arr) if arr is not None else None
    if ints is not None:  # fixed-width text ids: factorize integers, one per run of equal ids
        (iv, valid), = ints
        m = len(iv)
        heads = _int_run_heads(iv, valid)
        ok = np.ones(len(heads), dtype=bool) if valid is None else valid[heads]
        c = np.empty(len(heads), dtype=np.int64)
        hv = iv[heads][ok]
        if len(hv) < 2 or (hv[1:] > hv[:-1]).all():  # ids in increasing order: runs are the codes
            cc, n = np.arange(len(hv), dtype=np.int64), len(hv)
        else:
            cc, u = pd.factorize(hv)
            n = len(u)
        c[ok], c[~ok] = cc, n
        return (np.repeat(c, np.diff(np.r_[heads, m])) if len(heads) < m else c), n + 1
    if arr is not None:
        heads = _run_heads(arr)
        m = len(arr)
        part = pc.take(arr, pa.array(heads)) if len(heads) < 0.7 * m else arr
        enc = pc.dictionary_encode(part).combine_chunks() if hasattr(part, "combine_chunks") \
            else pc.dictionary_encode(part)
        n = len(enc.dictionary)
        c = pc.fill_null(enc.indices, n).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        if len(heads) < 0.7 * m and m:
            c = np.repeat(c, np.diff(np.r_[heads, m]))
        return c, n + 1
    x = values.to_numpy() if not isinstance(values, np.ndarray) else values
    if x.dtype.kind in "iu" and len(x):
        lo, hi = int(x.min()), int(x.max())
        if hi - lo < 4 * len(x) + 1024:
            return (x.astype(np.int64, copy=False) - lo), hi - lo + 1
    c, u = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(c, dtype=np.int64), max(len(u), 1)


def duplicated(df: pd.DataFrame, columns: Sequence[str] | None = None, *, keep: str | bool = "first",
               cache: dict | None = None) -> np.ndarray:
    """Boolean array like :meth:`pandas.DataFrame.duplicated`, on integer codes.

    Each column is turned into integer codes (:func:`int_codes`), the codes are combined into
    one int64 id per row (re-compressed when the product of the cardinalities would overflow)
    and the ids are checked with one hash pass. On 10 million order lines keyed by
    ``(order_id, line_no)`` this is several times faster than ``DataFrame.duplicated``, which
    factorizes every text cell. Missing values compare equal, as in pandas.

    Parameters
    ----------
    df : DataFrame
    columns : sequence of str, optional
        Default: every column.
    keep : 'first', 'last' or False
        As in pandas.
    cache : dict, optional
        ``{column name: (codes, n)}`` reused across calls on the same frame.
    """
    cols = list(df.columns if columns is None else columns)
    if not len(df) or not cols:
        return np.zeros(len(df), dtype=bool)
    ids, size = None, 1
    for c in cols:
        if cache is not None and c in cache:
            codes, n = cache[c]
        else:
            codes, n = int_codes(df[c])
            if cache is not None:
                cache[c] = (codes, n)
        if ids is None:
            ids, size = codes, n
            continue
        if size * n >= 2**62:
            ids, uniq = pd.factorize(ids)
            ids, size = ids.astype(np.int64), len(uniq)
        ids = ids * n + codes
        size *= n
    if keep is False:
        # the usual question of a key check; sorting one int64 array needs far less memory than
        # a hash table of every row (GBs at 10^7 rows), and a valid key has no duplicate at all
        s = ids if bool((ids[1:] >= ids[:-1]).all()) else np.sort(ids)  # stored in key order: no sort
        if not bool((s[1:] == s[:-1]).any()):
            return np.zeros(len(df), dtype=bool)
        del s
    if size <= 4 * len(df) + 1024 and keep == "first":
        # dense ids: first occurrences by a scatter, no hash table
        first = np.empty(size, dtype=np.int64)
        first[ids[::-1]] = np.arange(len(df) - 1, -1, -1, dtype=np.int64)  # the first row is written last
        return first[ids] != np.arange(len(df))
    return np.asarray(pd.Series(ids).duplicated(keep=keep), dtype=bool)
