"""The ``'spark'`` engine: ``pyspark.ml.fpm.FPGrowth`` on a local or remote Spark."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..exceptions import AnalysisError
from ..infra.progress import Stages
from ..infra.spark import get_session
from .encoding import EncodedBaskets
from .engines import TooManyItemsets


def spark_itemsets(enc: EncodedBaskets, max_len: int | None, limit: int | None, stages: Stages,
                   master: str | None, conf: Mapping[str, str] | None) -> tuple[list[tuple[int, ...]], list[int]]:
    """Itemsets of 2..max_len items with ``pyspark.ml.fpm.FPGrowth`` (PFP): ``(codes, counts)``.

    Baskets with two or more frequent items go to Spark as (basket, item) integer pairs through
    Arrow and are grouped there. Spark's ``minSupport`` is a fraction of *its* rows and keeps
    itemsets with ``freq >= ceil(minSupport * rows)``; passing (c − ½)/rows makes that exactly c.
    Spark has no maximum itemset size, so longer itemsets are dropped in Spark before anything is
    collected; the itemsets are counted in the cluster first (``limit``) and only then collected.
    Spark's own ``associationRules`` are not used: rules come from the counts, as for every engine.
    """
    # pyspark is optional and slow to import (a JVM gateway): imported only when this engine runs
    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import functions as F

    sizes = enc.sizes
    multi = sizes >= 2
    n_rows = int(multi.sum())
    if n_rows < enc.min_count:
        return [], []
    stages.note(engine="spark", step="starting session")
    spark = get_session(master, conf)
    rows = np.repeat(np.arange(enc.n_baskets, dtype=np.int64), sizes)
    keep = multi[rows]
    pairs = pd.DataFrame({"b": rows[keep], "i": enc.indices[keep]})
    del rows, keep
    stages.note(engine="spark", baskets=n_rows, step="fit")
    tx = spark.createDataFrame(pairs).groupBy("b").agg(F.collect_list("i").alias("items"))
    del pairs
    fp = FPGrowth(itemsCol="items", minSupport=(enc.min_count - 0.5) / n_rows, minConfidence=1.0)
    model = fp.fit(tx)
    fi = model.freqItemsets.where(F.size("items") >= 2)
    if max_len is not None:
        fi = fi.where(F.size("items") <= int(max_len))
    fi = fi.persist()
    try:
        if limit is not None:
            total = fi.count()
            if total > limit:
                raise TooManyItemsets(total, exact=True)
        stages.note(engine="spark", step="collect")
        got = fi.toPandas()
    finally:
        fi.unpersist()
    sets = [tuple(int(i) for i in s) for s in got["items"]]
    counts = [int(c) for c in got["freq"]]
    low = [c for c in counts if c < enc.min_count]
    if low:  # pragma: no cover - would mean Spark changed its threshold rule
        raise AnalysisError(f"Spark FPGrowth returned {len(low)} itemsets below the minimum count {enc.min_count} "
                            f"(lowest {min(low)}); its minSupport rounding changed. Use engine='fim'.")
    return sets, counts
