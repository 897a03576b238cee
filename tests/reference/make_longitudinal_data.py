"""Write tests/reference/longitudinal_data.csv, the data that tests/reference/longitudinal_nlme.R
and tests/reference/longitudinal_glmmtmb.R fit.

Repeated measures within subjects within clinics: 60 clinics (``clinic`` 1..60), 4-8
subjects per clinic (``subject`` restarts at 1 in each clinic), and 6 planned occasions
``occ`` = 1..6 per subject, of which about 15% are dropped at random (never all of a
subject's: if every occasion of a subject is drawn for dropping, one of them, chosen at
random, is kept). ``time`` = occ + U(-0.3, 0.3) is a continuous measurement time (distinct
and increasing within a subject). ``x ~ N(0, 1)`` per row, and ``arm`` ("c" or "t", equal
probabilities) per subject. The outcome is

    y = 1 + 0.5 x + 0.3 [arm == "t"] + u_clinic + e,   u ~ N(0, 0.5)  (variance 0.5),

where, within a subject, the residuals of occasions s and t have correlation
0.6^|time_s - time_t| (a continuous-time AR(1) in ``time``) and standard deviations
1.0, 1.1, 1.2, 1.3, 1.4, 1.5 for occ = 1..6. The residuals are drawn for all six occasions
before any are dropped. Values are rounded to 6 decimals; rows are sorted by clinic,
subject, occ.

Run from the repository root:  python tests/reference/make_longitudinal_data.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent

N_CLINICS, N_OCC = 60, 6
SEED = 20250312
VAR_CLINIC = 0.5
RHO = 0.6
SD_OCC = np.array([1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
DROP_FRACTION = 0.15


def longitudinal_data(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_subjects = rng.integers(4, 9, size=N_CLINICS)  # 4..8 subjects per clinic
    n_sub = int(n_subjects.sum())
    clinic_of_subject = np.repeat(np.arange(N_CLINICS), n_subjects)
    subject_in_clinic = np.arange(n_sub) - np.r_[0, np.cumsum(n_subjects)[:-1]][clinic_of_subject]
    arm = rng.choice(np.array(["c", "t"]), size=n_sub)
    u = rng.normal(0.0, np.sqrt(VAR_CLINIC), size=N_CLINICS)
    occ = np.arange(1, N_OCC + 1)
    time = occ + rng.uniform(-0.3, 0.3, size=(n_sub, N_OCC))
    e = np.empty((n_sub, N_OCC))
    for s in range(n_sub):
        corr = RHO ** np.abs(np.subtract.outer(time[s], time[s]))
        e[s] = rng.multivariate_normal(np.zeros(N_OCC), corr * np.outer(SD_OCC, SD_OCC))
    x = rng.normal(size=(n_sub, N_OCC))
    drop = rng.uniform(size=(n_sub, N_OCC)) < DROP_FRACTION
    for s in np.flatnonzero(drop.all(axis=1)):
        drop[s, rng.integers(N_OCC)] = False
    y = 1.0 + 0.5 * x + 0.3 * (arm == "t")[:, None] + u[clinic_of_subject][:, None] + e
    keep = ~drop
    sub_index = np.repeat(np.arange(n_sub), N_OCC).reshape(n_sub, N_OCC)[keep]
    return pd.DataFrame({
        "clinic": clinic_of_subject[sub_index] + 1,
        "subject": subject_in_clinic[sub_index] + 1,
        "occ": np.tile(occ, (n_sub, 1))[keep],
        "time": time[keep].round(6),
        "arm": arm[sub_index],
        "x": x[keep].round(6),
        "y": y[keep].round(6),
    })


if __name__ == "__main__":
    longitudinal_data().to_csv(HERE / "longitudinal_data.csv", index=False)
