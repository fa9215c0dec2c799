"""The data layer: the canonical model and everything that reads, checks and makes data.

``schema`` (canonical tables, casts, validation), ``keys`` (fast joins and duplicate checks on
ids), ``io`` (the reading entry point, re-exporting ``reading``, ``formats``, ``mapping``,
``lines`` and ``dataset``), ``quality`` (quality report, cleaning, quarantine) and ``sample``
(the synthetic shop with planted truths). It imports only ``exceptions``, ``paths`` and ``infra``.
"""
