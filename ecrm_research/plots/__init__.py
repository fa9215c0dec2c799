"""Figures, one module per analysis. Every function takes ``ax=None`` and returns the Axes
(or a Figure for multi-panel views), drawn from the tidy tables the analysis returns."""
