"""Building the sampled count-vector transition of one G-LEARN call (k = 50, m = 30): old vs new, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/glearn_build_speed.py

`old` is `bench/glearn_baseline.count_transitions` (rank every sampled count vector), `new` is
`altmarl_ros.marl.learners.g_learn.count_transitions` (additive prefix codes); both draw from the same
seed, and the script checks that the CSR indices are identical. Prints min / median / max CPU seconds
over 3 interleaved repeats (CPU time: the machine is shared).
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import glearn_baseline as old

from altmarl_ros.marl.game import marginal_local
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.learners.g_learn import count_transitions

game = make_game("warehouse")
P_tilde, _ = marginal_local(game, np.random.default_rng(3).dirichlet(np.ones(3), size=(5, 5)))
seconds: dict[str, list[float]] = {"old": [], "new": []}
reference: list[np.ndarray] = []
for _ in range(3):
    for name, build in (("old", old.count_transitions), ("new", count_transitions)):
        t0 = time.process_time()
        M = build(game, P_tilde, k=50, transition="sampled", m=30, rng=np.random.default_rng(0))
        seconds[name].append(time.process_time() - t0)
        if name == "old":
            reference = [x.indices.copy() for x in M]
        elif not all(np.array_equal(a, b.indices) for a, b in zip(reference, M, strict=True)):
            raise SystemExit("the two builds differ")
        del M
for name, values in seconds.items():
    lo, med, hi = sorted(values)
    print(f"{name} build CPU s min / median / max: {lo:.2f} / {med:.2f} / {hi:.2f}")
print("identical CSR indices: yes")
