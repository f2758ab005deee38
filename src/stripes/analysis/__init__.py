"""Analyses: the toy kernel study (``stripes.analysis.toy``) and, from other modules, MI, significance,
reports and figures."""
