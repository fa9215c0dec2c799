"""The report layer: running the notebooks and everything a run writes.

``notebooks`` (finding notebooks, their parameters), ``runner`` (papermill execution,
``run_all``), ``scheduling`` (parallel jobs and queue order), ``render`` (HTML reports), ``pdf``,
``site`` (``index.html``), ``manifest`` (``manifest.json``), ``reproduce`` (``ecrm reproduce``),
``outputs`` (what a notebook writes), ``handout`` (student handouts) and ``display``.
"""
