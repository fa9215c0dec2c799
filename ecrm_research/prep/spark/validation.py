"""Casting raw Spark tables to the canonical columns and types, and validating them as
:func:`ecrm_research.data.schema.coerce_table` / ``validate_table`` do on pandas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...data import schema
from ...exceptions import ParameterError, SchemaError
from .columns import SPARK_TYPES, micros_of, ntz_from_micros, quoted, strip_whitespace, usable
from .session import sql_functions

if TYPE_CHECKING:  # pragma: no cover - typing only; pyspark is an optional dependency
    from pyspark.sql import Column, DataFrame


_TRUTHY = ("1", "true", "yes", "y", "t")


_FALSY = ("0", "false", "no", "n", "f")


def _strftime_to_spark(fmt: str) -> str:
    """A strftime date format (as pandas takes) in Spark's pattern language."""
    if "%" not in fmt:
        return fmt  # already a Spark pattern
    table = {"%Y": "yyyy", "%y": "yy", "%m": "MM", "%d": "dd", "%H": "HH", "%I": "hh", "%M": "mm", "%S": "ss",
             "%f": "SSSSSS", "%b": "MMM", "%B": "MMMM", "%p": "a", "%%": "%"}
    out, i = [], 0
    while i < len(fmt):
        tok = fmt[i:i + 2]
        if tok in table:
            out.append(table[tok])
            i += 2
            continue
        if tok.startswith("%"):
            raise ParameterError(f"date_format={fmt!r}: {tok!r} has no Spark equivalent here; give a Spark pattern "
                                 "such as 'dd/MM/yyyy HH:mm'.")
        ch = fmt[i]
        out.append(f"'{ch}'" if ch.isalpha() else ch)
        i += 1
    return "".join(out)


@dataclass
class _Check:
    """One validation count: rows where ``bad`` holds, with the raw value as example."""

    column: str
    bad: Any
    example: Any
    message: str  # format with n, example


@dataclass
class _Raw:
    """One raw column: its Spark column, Spark type, name, where it comes from (for messages) and
    whether a value is present (not null, not blank, not NaN)."""

    c: Column
    dt: Any
    name: str
    where: str
    present: Column

    def unparsable(self, value: Column, what: str, hint: str) -> _Check:
        """The check that every present value parsed (``value`` not null)."""
        return _Check(self.name, self.present & value.isNull(), self.c.cast("string"),
                      f"{self.where}: column '{self.name}' has {{n:,}} value(s) that are not {what} "
                      f"(e.g. {{example!r}}). {hint}")


def _canonical_column(raw: DataFrame, spec: schema.ColumnSpec, *, where: str, date_format: str | None,
                      decimal: str, tidy_ids: frozenset[str]) -> tuple[Column, list[_Check]]:
    """The canonical Spark expression of one column and the checks of its values."""
    from pyspark.sql import types as T  # why: pyspark is optional (see session.sql_functions)

    F = sql_functions()
    name, kind = spec.name, spec.kind
    c = F.col(quoted(name))
    dt = raw.schema[name].dataType
    if isinstance(dt, T.StringType):
        present = c.isNotNull() & (strip_whitespace(c) != "")
    elif isinstance(dt, (T.DoubleType, T.FloatType)):
        present = usable(c)
    else:
        present = c.isNotNull()
    col = _Raw(c, dt, name, where, present)
    if kind in ("id", "text"):
        value, checks = _id_or_text(col, kind, name in tidy_ids), []
    elif kind == "datetime":
        value, checks = _datetime(col, date_format)
    elif kind in ("float", "int"):
        value, checks = _number(col, kind, decimal)
    elif kind == "bool":
        value, checks = _flag(col)
    elif kind == "category":
        value, checks = _category(col, spec)
    else:  # pragma: no cover - schema.ColumnSpec kinds are closed
        raise ValueError(f"unknown column kind {kind!r}")
    value = value.cast(SPARK_TYPES[kind])
    return value.alias(name), checks + _value_constraints(col, spec, value)


def _id_or_text(col: _Raw, kind: str, tidy: bool) -> Column:
    from pyspark.sql import types as T  # why: pyspark is optional (see session.sql_functions)

    F = sql_functions()
    c = col.c
    if isinstance(col.dt, T.StringType):
        s = F.regexp_replace(c, r"\.0+$", "") if tidy else c
        trimmed = strip_whitespace(s)
        return F.when(trimmed == "", F.lit(None)).otherwise(trimmed if kind == "id" else s)
    if isinstance(col.dt, (T.DoubleType, T.FloatType)):
        # ids read as floats (17850.0 because of blanks) -> '17850'
        whole = usable(c) & (c == F.floor(c))
        return F.when(whole, c.try_cast("bigint").cast("string")).when(usable(c), c.cast("string"))
    return c.cast("string")


def _datetime(col: _Raw, date_format: str | None) -> tuple[Column, list[_Check]]:
    from pyspark.sql import types as T  # why: pyspark is optional (see session.sql_functions)

    F = sql_functions()
    c, dt = col.c, col.dt
    if isinstance(dt, T.StringType):
        s = strip_whitespace(c)
        if date_format:
            fmt = F.lit(_strftime_to_spark(date_format))
            value = F.when(F.try_to_timestamp(s, fmt).isNotNull(), F.to_timestamp_ntz(s, fmt))
            hint = f"Check date_format (it was {date_format!r}) or fix the rows."
        else:
            value = s.try_cast("timestamp_ntz")
            hint = "Pass date_format, e.g. '%d/%m/%Y' or '%Y-%m-%d %H:%M', or fix the rows."
        return value, [col.unparsable(value, "dates", hint)]
    if isinstance(dt, T.TimestampNTZType):
        return c, []
    if isinstance(dt, (T.TimestampType, T.DateType, T.NumericType)):
        if isinstance(dt, (T.DoubleType, T.FloatType)):
            c = F.when(usable(c), c)
        return ntz_from_micros(micros_of(c, dt, col.name)), []
    value = c.try_cast("timestamp_ntz")
    return value, [col.unparsable(value, "dates", "Fix the rows.")]


def _number(col: _Raw, kind: str, decimal: str) -> tuple[Column, list[_Check]]:
    from pyspark.sql import types as T  # why: pyspark is optional (see session.sql_functions)

    F = sql_functions()
    c, dt = col.c, col.dt
    if kind == "int" and isinstance(dt, T.IntegralType):
        return c, []  # already whole numbers
    checks = []
    if isinstance(dt, T.StringType):
        s = strip_whitespace(c)
        if decimal != ".":
            s = F.translate(s, decimal, ".")
        d = s.try_cast("double")
        checks.append(col.unparsable(d, "numbers", "If the file uses a decimal comma pass decimal=','; otherwise "
                                                   "fix the rows."))
    else:
        d = c.cast("double")
    d = F.when(usable(d), d) if not isinstance(dt, T.IntegralType) else d  # NaN -> missing, as in pandas
    if kind == "float":
        return d, checks
    checks.append(_Check(col.name, d.isNotNull() & (d != F.floor(d)), c.cast("string"),
                         f"{col.where}: column '{col.name}' has {{n:,}} value(s) that are not whole numbers "
                         "(e.g. {example!r}). Fix the rows."))
    return F.when(d == F.floor(d), d.try_cast("bigint")), checks


def _flag(col: _Raw) -> tuple[Column, list[_Check]]:
    from pyspark.sql import types as T  # why: pyspark is optional (see session.sql_functions)

    F = sql_functions()
    if isinstance(col.dt, T.BooleanType):
        return col.c, []
    low = F.lower(strip_whitespace(col.c.cast("string")))
    value = F.when(low.isin(*_TRUTHY), F.lit(True)).when(low.isin(*_FALSY), F.lit(False))
    return value, [col.unparsable(value, "yes/no values", "Use 1/0, true/false or yes/no.")]


def _category(col: _Raw, spec: schema.ColumnSpec) -> tuple[Column, list[_Check]]:
    F = sql_functions()
    low = F.lower(strip_whitespace(col.c.cast("string")))
    value = F.when(low != "", low)
    if not spec.allowed:
        return value, []
    return value, [_Check(col.name, value.isNotNull() & ~value.isin(*spec.allowed), col.c.cast("string"),
                          f"{col.where}: column '{col.name}' has {{n:,}} value(s) that are not one of "
                          f"{list(spec.allowed)} (e.g. {{example!r}}). Map the values or fix the rows.")]


def _value_constraints(col: _Raw, spec: schema.ColumnSpec, value: Column) -> list[_Check]:
    """Missing required values and ranges (pandera's checks in ``schema.validate_table``)."""
    F = sql_functions()
    name, where, c = col.name, col.where, col.c
    checks = []
    if not spec.nullable:
        checks.append(_Check(name, value.isNull() & ~col.present, F.lit(None).cast("string"),
                             f"{where}: column '{name}' has {{n:,}} missing value(s); every row needs one. "
                             "Fix the rows or the column mapping."))
    if spec.min_value is not None:
        checks.append(_Check(name, value < F.lit(spec.min_value), c.cast("string"),
                             f"{where}: column '{name}' has {{n:,}} value(s) below {spec.min_value:g} "
                             "(e.g. {example!r}). Fix the rows or the column mapping."))
    if spec.max_value is not None:
        checks.append(_Check(name, value > F.lit(spec.max_value), c.cast("string"),
                             f"{where}: column '{name}' has {{n:,}} value(s) above {spec.max_value:g} "
                             "(e.g. {example!r}). Fix the rows or the column mapping."))
    return checks


def require_canonical_columns(raw: DataFrame, table: str, where: str) -> None:
    """Raise :class:`SchemaError` when the raw table lacks a required canonical column."""
    schema.require_columns(raw.columns, table, where, hint="Rename them in the file (the Spark engine reads "
                           "canonical names; see schema.describe()).")


def _one_row(parts: Sequence[DataFrame]) -> Any:
    """Collect several one-row aggregates in one Spark action (a cross join of single rows)."""
    combined = parts[0]
    for p in parts[1:]:
        combined = combined.crossJoin(p)
    return combined.collect()[0]


def canonical_tables(raws: Mapping[str, tuple[DataFrame, str, bool]], *, date_format: str | None = None,
                      decimal: str = ".", validate: bool = True) -> dict[str, DataFrame]:
    """Cast raw Spark tables to the canonical columns and types, validating them.

    ``raws``: table → (raw DataFrame, where (file name for messages), text file?). With
    ``validate``, one Spark action counts every check of every table (unparsable values, missing
    required values, ranges, allowed values, empty tables; as ``schema.coerce_table`` +
    ``validate_table`` do) and, for text files, which id columns hold float-looking ids; a second
    action groups each table by its key for surplus rows. Problems are reported table by table in
    the data model's order, the first failing check first.
    """
    F = sql_functions()

    def build(raw: DataFrame, table: str, where: str, tidy: frozenset[str]) -> tuple[list[Column], list[_Check]]:
        spec = schema.TABLES[table]
        cols, checks = [], []
        for c in spec.columns:
            if c.name in raw.columns:
                value, cc = _canonical_column(raw, c, where=where, date_format=date_format, decimal=decimal,
                                              tidy_ids=tidy)
                cols.append(value)
                checks += cc
            else:
                cols.append(F.lit(None).cast(SPARK_TYPES[c.kind]).alias(c.name))
        for extra in (c for c in raw.columns if c not in spec.names):
            if spec.extra_numeric:
                value, cc = _canonical_column(raw, schema.ColumnSpec(extra, "float"), where=where,
                                              date_format=None, decimal=decimal, tidy_ids=frozenset())
                cols.append(value)
                checks += cc
            else:
                cols.append(F.col(quoted(extra)))
        return cols, checks

    checks, ids, parts = {}, {}, []
    for j, (table, (raw, where, text)) in enumerate(raws.items()):
        require_canonical_columns(raw, table, where)
        # the checks do not depend on the id tidying (it only drops a '.0' suffix)
        checks[table] = build(raw, table, where, frozenset())[1] if validate else []
        ids[table] = [c.name for c in schema.TABLES[table].columns
                      if text and c.kind == "id" and c.name in raw.columns]
        aggs = []
        for c in ids[table]:  # text ids such as '17850.0' everywhere: read as '17850' (io._tidy_float_ids)
            given = F.col(quoted(c)).isNotNull()
            aggs += [F.sum(given.cast("int")).alias(f"t{j}_given_{c}"),
                     F.sum((given & F.col(quoted(c)).rlike(r"^-?\d+\.0+$")).cast("int")).alias(f"t{j}_float_{c}")]
        if validate:
            aggs.append(F.count(F.lit(1)).alias(f"t{j}_n"))
            for i, ch in enumerate(checks[table]):
                aggs.append(F.sum(F.when(ch.bad, 1).otherwise(0)).alias(f"t{j}_b{i}"))
                aggs.append(F.first(F.when(ch.bad, ch.example), ignorenulls=True).alias(f"t{j}_e{i}"))
        if aggs:
            parts.append(raw.agg(*aggs))
    row = _one_row(parts) if parts else None
    out = {}
    for j, (table, (raw, where, _)) in enumerate(raws.items()):
        if validate:
            _raise_failed_checks(row, j, checks[table], table, where)
        tidy = frozenset(c for c in ids[table]
                         if (row[f"t{j}_given_{c}"] or 0) > 0 and row[f"t{j}_given_{c}"] == row[f"t{j}_float_{c}"])
        out[table] = raw.select(*build(raw, table, where, tidy)[0])
    if validate:
        _check_unique_keys(out, {t: w for t, (_, w, _) in raws.items()})
    return out


def _raise_failed_checks(row: Any, j: int, checks: list[_Check], table: str, where: str) -> None:
    spec = schema.TABLES[table]
    if not row[f"t{j}_n"]:
        raise SchemaError(f"{where}: the table is empty (no rows). A '{table}' table needs at least one row "
                          f"with columns {spec.required}.", source=where, n_rows=0)
    for i, ch in enumerate(checks):
        n = int(row[f"t{j}_b{i}"] or 0)
        if n:
            example = row[f"t{j}_e{i}"]
            raise SchemaError(ch.message.format(n=n, example=example), source=where, column=ch.column, n_rows=n,
                              example=example)


def _check_unique_keys(tables: Mapping[str, DataFrame], where: Mapping[str, str]) -> None:
    """Surplus rows per key of every table, in one Spark action."""
    F = sql_functions()
    parts = []
    for j, (table, df) in enumerate(tables.items()):
        key = list(schema.TABLES[table].key)
        parts.append(df.groupBy(*key).count().where(F.col("count") > 1)
                     .agg(F.sum(F.col("count") - 1).alias(f"t{j}_n"),
                          F.first(F.array(*[F.col(k).cast("string") for k in key])).alias(f"t{j}_key")))
    row = _one_row(parts)
    for j, table in enumerate(tables):
        n_dup = int(row[f"t{j}_n"] or 0)
        if n_dup:
            key = list(schema.TABLES[table].key)
            example = list(row[f"t{j}_key"])
            raise SchemaError(
                f"{where[table]}: key {key} is not unique: {n_dup:,} surplus row(s) share a key (first: {example}). "
                "Each row of this table must have its own key; remove the duplicates or choose another key.",
                source=where[table], column=key[0], n_rows=n_dup, example=example)
