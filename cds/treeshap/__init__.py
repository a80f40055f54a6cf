"""Exact path-dependent TreeSHAP for LightGBM binary models, in numpy.

Use :class:`TreeExplainer` (:mod:`cds.treeshap.explainer`).
"""

from .explainer import TreeExplainer

__all__ = ["TreeExplainer"]
