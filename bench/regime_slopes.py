"""Gap slopes vs k per regime (issue 15 item 3) from the saved k-sweep: k whose trained pairs are the same
behaviour (`reports.policy_identity` on all 5 seeds) are one policy and are excluded from the fit.

    .venv/bin/python bench/regime_slopes.py
"""
import collections
import csv
import hashlib

import numpy as np

from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.reports import fit_slope_by_regime, policy_identity

with open('bench/results/k_sweep/gaps.csv') as fh:
    rows = list(csv.DictReader(fh))
vals = collections.defaultdict(list)
for r in rows:
    vals[(r['metric'], int(r['k']))].append(float(r['value']))
ks = sorted({int(r['k']) for r in rows})
ids = []
for k in ks:
    h = hashlib.sha256()
    for s in range(5):
        a = load_policies(f'bench/results/k_sweep/policies/k{k}_seed{s}')
        h.update(policy_identity(a.pi_g.actions, a.pi_l.probs).encode())
    ids.append(h.hexdigest()[:8])
print(dict(zip(ks, ids, strict=True)))
for m in ('gap_g_full','gap_g_restricted','gap_l_unilateral','gap_l_shared'):
    means = [np.mean(vals[(m,k)]) for k in ks]
    print(m, fit_slope_by_regime(ks, means, ids).text())
