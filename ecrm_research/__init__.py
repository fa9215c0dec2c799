"""ecrm-research: e-commerce CRM data mining, the five-step way.

Layers, data flowing one way (see docs/architecture.md):
``data`` (schema, keys, reading, mapping, quality, sample) -> ``prep`` (step 2 on pandas or
Spark) -> the analyses (``association``, ``survival``, ``loyalty``, ``segmentation``,
``activity``) -> ``report`` (notebooks, runner, render, site, manifest, reproduce) -> ``cli``.
"""

__version__ = "0.1.0"
