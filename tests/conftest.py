"""Shared fixtures. Real data sets live outside the project (../shared/datasets or $ECRM_DATASETS).

Locally a missing data set skips its tests; in CI (CI=true or ECRM_REQUIRE_DATASETS=1) it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ecrm_research.paths import SAMPLE_DIR, shared_datasets_dir


def _require() -> bool:
    return os.environ.get("ECRM_REQUIRE_DATASETS") == "1" or os.environ.get("CI", "").lower() == "true"


def skip_or_fail(msg: str) -> None:
    """Skip locally, fail in CI: a missing data set, browser or engine must never pass CI untested."""
    if _require():
        pytest.fail(msg)
    pytest.skip(msg)


def dataset_path(*parts: str) -> Path:
    """Path of a real data-set file; skip (locally) or fail (CI) when it is absent."""
    p = shared_datasets_dir().joinpath(*parts)
    if not p.exists():
        skip_or_fail(f"real data set missing: {p} (set ECRM_DATASETS to the folder holding the data sets)")
    return p


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    return dataset_path()


@pytest.fixture(scope="session")
def groceries_csv() -> Path:
    return dataset_path("groceries", "groceries.csv")


@pytest.fixture(scope="session")
def online_retail_parquet() -> Path:
    return dataset_path("online_retail", "online_retail.parquet")


@pytest.fixture(scope="session")
def rossi_csv() -> Path:
    return dataset_path("rossi", "rossi.csv")


@pytest.fixture(scope="session")
def telco_csv() -> Path:
    return dataset_path("telco_churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv")


@pytest.fixture(scope="session")
def ecsi_dir() -> Path:
    return dataset_path("ecsi_mobile")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE_DIR / "orders.parquet").exists():
        pytest.fail(f"bundled sample data missing in {SAMPLE_DIR}; run `ecrm sample`")
    return SAMPLE_DIR


@pytest.fixture
def run_nb(tmp_path):
    """Execute a notebook by short name into tmp_path; return its output folder.

    Usage: ``out = run_nb("association", data=str(path), params={"min_support": 0.01})``.
    Fails the test with the notebook's error when execution fails.
    """
    from ecrm_research.report.runner import run_notebook

    def _run(name: str, **kwargs) -> Path:
        res = run_notebook(name, out=tmp_path, progress=False, **kwargs)
        if res.status != "ok":
            pytest.fail(f"notebook {name} failed: {res.error}")
        return Path(res.out_dir)

    return _run
