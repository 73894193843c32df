"""Exact, fast PLS regression: scikit-learn's ``PLSRegression`` (NIPALS, ``scale=False``) in torch, with every
cross-validation fold of one data set fitted together."""

from memprobe.pls.estimator import PLSRegression, PLSWarning

__all__ = ["PLSRegression", "PLSWarning"]
