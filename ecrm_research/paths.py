"""Project-root paths. Notebooks and the CLI never rely on the current directory."""

from __future__ import annotations

import os
from pathlib import Path

PROJ_ROOT: Path = Path(__file__).resolve().parent.parent
DATA_DIR: Path = PROJ_ROOT / "data"
SAMPLE_DIR: Path = DATA_DIR / "sample"
MAPPINGS_DIR: Path = DATA_DIR / "mappings"
NOTEBOOKS_DIR: Path = PROJ_ROOT / "notebooks"
REPORTS_DIR: Path = PROJ_ROOT / "reports"

#: Kernel name registered by the README's set-up (``make install``).
KERNEL_NAME = "ecrm-research"


def shared_datasets_dir() -> Path:
    """Folder of the real public data sets used by the tests.

    ``ECRM_DATASETS`` overrides the default ``../shared/datasets`` (beside the project root).
    """
    return Path(os.environ.get("ECRM_DATASETS", PROJ_ROOT.parent / "shared" / "datasets")).resolve()
