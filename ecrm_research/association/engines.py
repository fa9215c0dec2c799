"""The mining engines: which exist, which are installed, which a call runs.

The engines themselves live beside this module: :mod:`.fim_engine` (pyfim),
:mod:`.mlxtend_engine` (mlxtend's FP-tree) and :mod:`.spark_engine` (``pyspark.ml.fpm``). Each
takes the same :class:`~.encoding.EncodedBaskets` and returns ``(itemsets as code tuples, counts)``
of 2..max_len items; :mod:`.itemsets` labels them.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

from ..exceptions import ParameterError

#: Mining engines accepted by :func:`frequent_itemsets` and :func:`mine_rules`.
ENGINES = ("auto", "mlxtend", "fim", "spark")
#: arules' default ``maxlen``.
DEFAULT_MAX_LEN = 10
#: Default ceiling on the number of frequent itemsets (memory guard).
DEFAULT_MAX_ITEMSETS = 1_000_000


class TooManyItemsets(Exception):
    """Raised by an engine that stopped (or would stop) at the itemset guard: ``count`` itemsets,
    ``exact`` when that is the true total rather than where the generator stopped."""

    def __init__(self, count: int, exact: bool):
        super().__init__(count)
        self.count = int(count)
        self.exact = exact


def import_fim() -> Any:
    """The ``fim`` module (pyfim), or None when it is not installed."""
    try:
        # optional C extension (pyfim: Borgelt's library, whose apriori and eclat arules runs),
        # imported on use so that the package works without it
        import fim
    except ImportError:
        return None
    return fim


def spark_importable() -> bool:
    """True when pyspark can be imported (checked without importing it: it is slow and optional)."""
    return importlib.util.find_spec("pyspark") is not None


def available_engines() -> list[str]:
    """Mining engines that can run in this environment (``'mlxtend'`` always)."""
    out = ["mlxtend"]
    if import_fim() is not None:
        out.append("fim")
    if spark_importable():
        out.append("spark")
    return out


def resolve_engine(engine: str = "auto", spark_master: str | None = None) -> str:
    """The engine a mining call with these arguments runs.

    ``'auto'`` is ``'spark'`` when a ``spark_master`` is given, else ``'fim'`` when pyfim is
    importable, else ``'mlxtend'``. An explicit engine that is not installed raises
    :class:`~ecrm_research.exceptions.ParameterError` with the install line.
    """
    if engine not in ENGINES:
        raise ParameterError(f"engine={engine!r}; use one of {list(ENGINES)} ('auto' picks the fastest installed).",
                             allowed=list(ENGINES))
    if engine == "auto":
        if spark_master:
            engine = "spark"
        else:
            return "fim" if import_fim() is not None else "mlxtend"
    if engine == "fim" and import_fim() is None:
        raise ParameterError("engine='fim' needs pyfim (Borgelt's C FP-growth): `pip install pyfim` (it compiles; "
                             "a C compiler is needed). Or use engine='mlxtend' (slower, pure Python).",
                             allowed=available_engines())
    if engine == "spark" and not spark_importable():
        raise ParameterError("engine='spark' needs pyspark and Java 17+: `pip install pyspark`. Or use engine='fim' "
                             "or 'mlxtend' on one machine.", allowed=available_engines())
    if spark_master and engine != "spark":
        warnings.warn(f"spark_master={spark_master!r} is ignored with engine={engine!r}.", stacklevel=3)
    return engine
