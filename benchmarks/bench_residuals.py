"""Time residual structures on a longitudinal design next to its independent-residual model, in one run.

    cd benchmarks && PYTHONPATH=.. python bench_residuals.py [--clinics 300] [--repeats 3] [--unstructured]

3,000 subjects in 300 clinics (10 each), six occasions with 15% of them missing at random, a
covariate ``x`` per row; ``y = 1 + 0.5 x + u_clinic + e`` with the residuals of a subject AR(1)
along the occasions (rho 0.6) and a standard deviation per occasion (1.0 to 1.5). The
independent-residual model is ``y ~ x + (1|clinic/subject)``; the structures take the subject
as the residual grouping under ``(1|clinic)``: Toeplitz (a covariance per lag), AR(1) along the
occasion (by the sums by gap, under ``(1|clinic/subject)``), exchangeable, AR(1) in a real time
``occ + U(-0.3, 0.3)`` and AR(1) with a variance per occasion (dense blocks), and, with
``--unstructured``, unstructured (a variance per occasion and a covariance per pair). Every fit is timed from
the DataFrame in memory to the results object, the relaxation included.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import sm_multisem as sms
from bench_relaxed import print_fit_times

OCCASIONS = 6
SD = np.linspace(1.0, 1.5, OCCASIONS)


def longitudinal(clinics: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    subjects = clinics * 10
    lag = np.abs(np.subtract.outer(np.arange(OCCASIONS), np.arange(OCCASIONS)))
    residual = rng.multivariate_normal(np.zeros(OCCASIONS), SD[:, None] * 0.6 ** lag * SD[None, :], size=subjects)
    clinic = np.repeat(np.arange(clinics), 10)
    frame = pd.DataFrame({"clinic": np.repeat(clinic, OCCASIONS), "subject": np.repeat(np.arange(subjects), OCCASIONS),
                          "occ": np.tile(np.arange(1, OCCASIONS + 1), subjects), "e": residual.ravel()})
    frame = frame[rng.uniform(size=len(frame)) > 0.15].reset_index(drop=True)
    frame["x"] = rng.normal(size=len(frame))
    frame["time"] = frame["occ"] + rng.uniform(-0.3, 0.3, size=len(frame))  # a real measurement time
    frame["y"] = 1.0 + 0.5 * frame["x"] + rng.normal(scale=np.sqrt(0.5), size=clinics)[frame["clinic"]] + frame["e"]
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinics", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--unstructured", action="store_true", help="also time unstructured residuals")
    args = parser.parse_args()
    data = longitudinal(args.clinics, args.seed)
    print(f"{len(data):,} rows, {data['clinic'].nunique():,} clinics, {data['subject'].nunique():,} subjects")
    nested = "y ~ x + (1|clinic)"
    variants = {
        "independent": lambda: sms.MultilevelSEM.from_formula("y ~ x + (1|clinic/subject)", data),
        "toeplitz": lambda: sms.MultilevelSEM.from_formula(nested, data).relax_residuals(
            structure="toeplitz", t="occ", within="subject"),
        "AR(1)": lambda: sms.MultilevelSEM.from_formula("y ~ x + (1|clinic/subject)", data).relax_residuals(
            structure="ar1", t="occ"),
        "exchangeable": lambda: sms.MultilevelSEM.from_formula(nested, data).relax_residuals(
            structure="exchangeable", within="subject"),
        "AR(1) real time": lambda: sms.MultilevelSEM.from_formula(nested, data).relax_residuals(
            structure="ar1", t="time", within="subject"),
        "AR(1) var by occ": lambda: sms.MultilevelSEM.from_formula(nested, data).relax_residuals(
            structure="ar1", t="occ", within="subject", by="occ"),
    }
    if args.unstructured:
        variants["unstructured"] = lambda: sms.MultilevelSEM.from_formula(nested, data).relax_residuals(
            structure="unstructured", t="occ", within="subject")
    print_fit_times(variants, args.repeats, "x independent")


if __name__ == "__main__":
    main()
