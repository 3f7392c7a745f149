"""Value iteration and exact policy evaluation on small finite MDPs.

P[s, a, s'] (next state last), r[s, a]. Used by L-LEARN (states (s_g, s_l)) and by the exact
brute-force metrics; G-LEARN has its own vectorized sweep over count vectors.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class VIResult(NamedTuple):
    V: np.ndarray  # (S,)
    Q: np.ndarray  # (S, A)
    n_sweeps: int
    residual: float  # sup-norm of the last Bellman update


def value_iteration(P: np.ndarray, r: np.ndarray, gamma: float, *, tol: float = 1e-10,
                    max_iter: int = 100_000, V0: np.ndarray | None = None) -> VIResult:
    """Solve max_a r + gamma P V to sup-norm residual `tol` (or `max_iter` sweeps).

    With residual eps the returned V is within gamma eps / (1 - gamma) of V*.
    """
    V = np.zeros(P.shape[0]) if V0 is None else np.asarray(V0, dtype=np.float64).copy()
    Q = r + gamma * P @ V
    residual = float("inf")
    sweeps = 0
    for sweeps in range(1, max_iter + 1):
        Q = r + gamma * P @ V
        V_new = Q.max(-1)
        residual = float(np.abs(V_new - V).max())
        V = V_new
        if residual < tol:
            break
    return VIResult(V, Q, sweeps, residual)


def policy_evaluation(P_pi: np.ndarray, r_pi: np.ndarray, gamma: float) -> np.ndarray:
    """Exact V^pi = (I - gamma P_pi)^{-1} r_pi for P_pi (S, S), r_pi (S,)."""
    S = P_pi.shape[0]
    return np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)


def stationary_distribution(T: np.ndarray, *, tol: float = 1e-13, max_squarings: int = 64) -> np.ndarray:
    """The limit of the lazy chain (I + T) / 2 started from the uniform distribution, for a row-stochastic
    (S, S) matrix: the stationary distribution when it is unique (else the uniform start's limit).

    By repeated squaring, L^(2^j) until its entries move less than `tol`: 2^j steps in j matrix products, so a
    slowly mixing chain (a near-absorbing state: 1e5 power-iteration steps or more) costs ~17-40 products; a
    chain that has not mixed after 2^64 steps returns the distribution after them.
    Damping removes periodicity and keeps the stationary distribution.
    """
    L = 0.5 * (np.eye(T.shape[0]) + T)
    for _ in range(max_squarings):
        L2 = L @ L
        L2 /= L2.sum(1, keepdims=True)  # rows summing to 1 + 1e-16 would otherwise grow like (1 + 1e-16)^(2^j)
        done = np.abs(L2 - L).max() < tol
        L = L2
        if done:
            break
    nu = np.full(T.shape[0], 1.0 / T.shape[0]) @ L
    return nu / nu.sum()
