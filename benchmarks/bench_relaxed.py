"""Time relaxed models next to the standard one, on the same districts data, in one run.

    PYTHONPATH=. python benchmarks/bench_relaxed.py [--rows 100000] [--repeats 3]

Relaxations: the school-level variance by school type (3 labels), the residual variance
by a student-level role (3 labels, varIdent), both, AR(1) residuals along an occasion number
within school, alone and with the school-level variance by type, and exchangeable residuals
within schools under a district intercept only (``(1|k)``, ``within="j"``: the standard
model with the school variance as a residual covariance, which may be negative). Then random
slopes of ``x`` (correlated with the intercepts), at both levels, ``(1 + x|k) + (1 + x|k:j)``,
and at the district level only; the data have slopes that vary with standard deviations 0.5
(district) and 0.3 (school), which the models without random slopes leave to the residual.
Then the structures beyond one slope: intercept and two slopes with an unstructured 3 x 3
covariance, independent intercept and slope (``||``), a district effect per school type with
an unstructured covariance (``(0 + C(type)|k)``; the data have a district effect per type, sd
0.4), and correlated sibling schools: the school variance by type with one covariance of
same-type schools per type, and a free covariance for every pair of public slots (up to 15 per
district). Every fit is timed from the DataFrame in memory to the results object, the
relaxation included.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import sm_multisem as sms
from bench_fit import FORMULA

SLOPES = "y ~ x + (1 + x|k) + (1 + x|k:j)"
#: name -> (formula, relaxation)
VARIANTS = {
    "standard": (FORMULA, lambda m: m),
    "var(k:j) by type": (FORMULA, lambda m: m.relax_variance("k:j", by="type")),
    "var(Residual) by role": (FORMULA, lambda m: m.relax_residuals(by="role")),
    "both": (FORMULA, lambda m: m.relax_variance("k:j", by="type").relax_residuals(by="role")),
    "AR(1)": (FORMULA, lambda m: m.relax_residuals(structure="ar1", t="time")),
    "var(k:j) by type + AR(1)": (FORMULA, lambda m: m.relax_variance("k:j", by="type")
                                 .relax_residuals(structure="ar1", t="time")),
    "exchangeable within j": ("y ~ x + (1|k)", lambda m: m.relax_residuals(structure="exchangeable", within="j")),
    "random slopes k, k:j": (SLOPES, lambda m: m),
    "random slope k": ("y ~ x + (1 + x|k) + (1|k:j)", lambda m: m),
    "(1 + x + w|k) + (1|k:j)": ("y ~ x + w + (1 + x + w|k) + (1|k:j)", lambda m: m),
    "(1 + x||k) + (1|k:j)": ("y ~ x + (1 + x||k) + (1|k:j)", lambda m: m),
    "(0 + type|k) + (1|k:j)": ("y ~ x + C(type) + (0 + C(type)|k) + (1|k:j)", lambda m: m),
    "var by type + equal cov": (FORMULA, lambda m: m.relax_variance("k:j", by="type")
                                .relax_covariance("k:j", by="type", equal=True)),
    "free cov of pub pairs": (FORMULA, lambda m: m.relax_covariance("k:j", by="type", among=["pub"])),
}


def labelled_districts(rows: int, seed: int):
    data = sms.simulate_districts(rows, seed)
    rng = np.random.default_rng(seed)
    school = data.groupby(["k", "j"]).ngroup().to_numpy()
    data["type"] = rng.choice(["pub", "prv", "chr"], size=school.max() + 1)[school]
    data["role"] = rng.choice(["a", "b", "c"], size=len(data))
    data["time"] = data.groupby(["k", "j"]).cumcount() + 1  # students as occasions of their school
    district = data["k"].to_numpy() - 1
    data["y"] += (rng.normal(scale=0.5, size=district.max() + 1)[district]
                  + rng.normal(scale=0.3, size=school.max() + 1)[school]) * data["x"]
    # a second covariate whose slope varies over districts (sd 0.3), and type effects correlated within a
    # district (a district effect per type, sd 0.4)
    data["w"] = rng.normal(size=len(data))
    data["y"] += (0.5 + rng.normal(scale=0.3, size=district.max() + 1)[district]) * data["w"]
    by_type = rng.normal(scale=0.4, size=(district.max() + 1, 3))
    data["y"] += by_type[district, data["type"].map({"pub": 0, "prv": 1, "chr": 2}).to_numpy()]
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    data = labelled_districts(args.rows, args.seed)
    print(f"{len(data):,} rows, {data['k'].nunique():,} districts, {data.groupby(['k', 'j']).ngroups:,} schools")
    builds = {name: (lambda formula=formula, relax=relax: relax(sms.MultilevelSEM.from_formula(formula, data)))
              for name, (formula, relax) in VARIANTS.items()}
    print_fit_times(builds, args.repeats, "x standard")


def print_fit_times(builds: dict, repeats: int, against: str) -> None:
    """Fit every model ``repeats`` times, from building it to its results, and print the median time, its
    ratio to the first model's, the number of parameters, the log-likelihood and whether it converged."""
    width = max(map(len, builds)) + 2
    print(f"{'model':<{width}}{'seconds':>10}{against:>15}{'parameters':>12}{'llf':>18}  converged")
    base = None
    for name, build in builds.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            res = build().fit()
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        base = base or seconds
        print(f"{name:<{width}}{seconds:>10.3f}{seconds / base:>15.1f}{len(res.params):>12}{res.llf:>18.6f}  "
              f"{res.converged}")


if __name__ == "__main__":
    main()
