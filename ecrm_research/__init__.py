"""ecrm-research: e-commerce CRM data mining, the five-step way.

Modules, one concern each (see docs/architecture.md):
schema, io, quality, sample, association, survival, loyalty, segmentation,
plots, outputs, runner, cli.
"""

__version__ = "0.1.0"
