"""Client heterogeneity and the state a client reports (ROS-free, numpy only).

Every client i has a profile drawn once from (fleet seed, i):
- availability: a two-state Markov chain, online -> offline with p_drop_i ~ U[0.05, 0.25] per round,
  offline -> online with p_return_i ~ U[0.2, 0.6]; round 0 is drawn from the chain's stationary law;
- speed: fast (5 local epochs fit in the round's deadline) with probability 0.5, else slow (1 epoch).
A client's availability in round t of a run is a pure function of (run seed, i, t), so the stateless
ClientApps of a Flower simulation (which may run in any Ray actor) agree on it without shared state.

Reported state s_l (LOCAL_STATES): offline (cannot answer the poll), or, for an online client, the
loss of the current global model on its own data compared with the server's held-out loss:
high_loss if local loss > the server's loss, else low_loss (a scale-free split: "my data is fitted
worse than average" -- the signal loss-aware client selection uses, e.g. Cho et al. 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOCAL_STATES = ("offline", "low_loss", "high_loss")
OFFLINE, LOW_LOSS, HIGH_LOSS = range(3)
EPOCHS_FAST, EPOCHS_SLOW = 5, 1


@dataclass(frozen=True)
class ClientProfile:
    p_drop: float  # P(online -> offline) per round
    p_return: float  # P(offline -> online) per round
    epochs: int  # local epochs that fit in the round's deadline (device speed)

    @property
    def p_online(self) -> float:
        """Stationary probability of being online."""
        return self.p_return / (self.p_drop + self.p_return)


def profiles(n_clients: int, fleet_seed: int) -> list[ClientProfile]:
    """The n clients' profiles (see the module docstring for the laws)."""
    rng = np.random.default_rng([fleet_seed, 17])
    drop = rng.uniform(0.05, 0.25, n_clients)
    ret = rng.uniform(0.2, 0.6, n_clients)
    fast = rng.random(n_clients) < 0.5
    return [ClientProfile(float(d), float(r), EPOCHS_FAST if f else EPOCHS_SLOW)
            for d, r, f in zip(drop, ret, fast, strict=True)]


def online_trace(profile: ClientProfile, run_seed: int, client: int, rounds: int) -> np.ndarray:
    """(rounds + 1,) bool: client `client` online in rounds 0..rounds of run `run_seed`."""
    u = np.random.default_rng([run_seed, client, 29]).random(rounds + 1)
    out = np.empty(rounds + 1, dtype=bool)
    out[0] = u[0] < profile.p_online
    for t in range(1, rounds + 1):
        out[t] = (u[t] >= profile.p_drop) if out[t - 1] else (u[t] < profile.p_return)
    return out


def is_online(profile: ClientProfile, run_seed: int, client: int, t: int) -> bool:
    return bool(online_trace(profile, run_seed, client, t)[t])


def client_rng(run_seed: int, client: int, t: int, purpose: int) -> np.random.Generator:
    """The client's generator for round t (purpose 0: its action, 1: its local SGD)."""
    return np.random.default_rng([run_seed, client, t, 1000 + purpose])


def loss_state(local_loss: float, reference_loss: float) -> int:
    """low_loss / high_loss of an online client: its loss against the server's held-out loss."""
    return HIGH_LOSS if local_loss > reference_loss else LOW_LOSS
