"""The project's exceptions. Each carries structured fields so callers (CLI, tests,
notebooks) can show or inspect *what* is wrong, not only a message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class EcrmError(Exception):
    """Base class: an error the user can fix. The CLI prints it without a traceback."""


@dataclass
class DataError(EcrmError):
    """Input data cannot be used as given.

    Attributes
    ----------
    message : str
        Full human-readable explanation, including what to do next.
    source : str or None
        File (or table) the problem is in.
    column : str or None
        Column concerned, if any.
    n_rows : int or None
        How many rows are affected.
    example : Any
        First offending value or row, echoed back.
    """

    message: str
    source: str | None = None
    column: str | None = None
    n_rows: int | None = None
    example: Any = None

    def __str__(self) -> str:
        return self.message


class SchemaError(DataError):
    """A table does not satisfy the canonical schema (missing column, bad type, bad key...)."""


class MappingError(DataError):
    """A column-mapping file is invalid or does not fit the data."""


class FormatError(DataError):
    """A data format is not accepted by an analysis, or cannot be detected."""


@dataclass
class ParameterError(EcrmError, ValueError):
    """A notebook/CLI parameter is unknown or invalid.

    Also a :class:`ValueError` (scikit-learn's convention for bad arguments), so callers that
    catch ``ValueError`` keep working.
    """

    message: str
    allowed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


class AnalysisError(EcrmError):
    """An analysis cannot proceed on this data (e.g. nothing reaches min_support)."""


class SurvivalWarning(UserWarning):
    """A fixable statistical problem found before or after fitting (also in ``diagnostics``)."""


def user_error_names() -> set[str]:
    """Class names of every :class:`EcrmError` subclass: errors the user can fix, whose message says
    what to do (the runner keeps them whole; ``ecrm run`` exits with 2 when a notebook stopped on one)."""
    names: set[str] = set()
    todo: list[type] = [EcrmError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names
