"""Coefficients of VectorMath.normalCDF's tail (Sources/Tensors/VectorMath.swift).

erfc(a) = t·Q(t)·exp(−a²) with t = 1/(1 + a/2): Q of degree 8 fitted by least squares for relative
error to erfcx(a)/t = exp(a²)·erfc(a)/t at 4,000 Chebyshev nodes of t over a in [1, 10] (the
kernel's far branch, |z| ≥ 1). Prints the coefficients (lowest degree first) and the largest
relative error of t·Q(t) against erfcx on a fine grid (2.5e-9 in exact arithmetic).

    .venv-peers/bin/python scripts/reference/fit_normal_tail.py
"""
import numpy as np
from scipy.special import erfcx

P, DEGREE, NODES = 0.5, 8, 4000
t_high, t_low = 1 / (1 + P * 1.0), 1 / (1 + P * 10.0)
k = np.arange(NODES)
t = (t_low + t_high) / 2 + (t_high - t_low) / 2 * np.cos(np.pi * (k + 0.5) / NODES)
target = erfcx((1 / t - 1) / P) / t
vandermonde = np.vander(t, DEGREE + 1, increasing=True)
coefficients, *_ = np.linalg.lstsq(vandermonde / target[:, None], np.ones_like(target), rcond=None)
fine = np.linspace(t_low, t_high, 200001)
error = np.abs(np.polyval(coefficients[::-1], fine) * fine / erfcx((1 / fine - 1) / P) - 1).max()
print("coefficients:", ", ".join(f"{c:.10e}" for c in coefficients))
print(f"largest relative error of t·Q(t) against erfcx: {error:.2e}")
