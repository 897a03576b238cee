"""Single-equation IV fits of iv_long.csv (make_iv_inputs.py) with linearmodels, ignoring
the nesting: reference numbers for the endogenous-covariate feature.

Fits (all on the 1600 long rows, covariance "unadjusted", i.e. homoskedastic with the
residual variance divided by n, debiased=False, linearmodels' defaults):

* ``2sls_just``: ``IV2SLS.from_formula("y ~ 1 + w + [x ~ z1]")``, just identified;
* ``liml_over``: ``IVLIML.from_formula("y ~ 1 + w + [x ~ z1 + z2]")``, over-identified;
* ``2sls_over``: ``IV2SLS.from_formula("y ~ 1 + w + [x ~ z1 + z2]")``, for comparison.

Writes iv_linearmodels.csv, tidy, one row per quantity: ``model, quantity, name, value``
with quantity ``params`` / ``bse`` (name: ``Intercept``, ``w``, ``x``), ``kappa`` (LIML's
kappa; 1 for 2SLS), ``nobs``, ``s2`` (residual variance, divisor n), and
iv_linearmodels_session.txt (versions and the printed summaries). The truth: Intercept 1,
w 0.5, x 1. Requires ``pip install linearmodels`` (a tool for this fixture only).

Run from the repository root:  python tests/reference/iv_linearmodels.py
"""

import platform
import sys
from pathlib import Path

import linearmodels
import numpy as np
import pandas as pd
from linearmodels.iv import IV2SLS, IVLIML

HERE = Path(__file__).parent

MODELS = {
    "2sls_just": (IV2SLS, "y ~ 1 + w + [x ~ z1]"),
    "liml_over": (IVLIML, "y ~ 1 + w + [x ~ z1 + z2]"),
    "2sls_over": (IV2SLS, "y ~ 1 + w + [x ~ z1 + z2]"),
}


def main():
    data = pd.read_csv(HERE / "iv_long.csv")
    rows, log = [], [
        f"Python {sys.version.split()[0]} on {platform.platform()}",
        f"linearmodels {linearmodels.__version__}, numpy {np.__version__}, pandas {pd.__version__}",
        "",
    ]
    for name, (estimator, formula) in MODELS.items():
        res = estimator.from_formula(formula, data).fit(cov_type="unadjusted")
        kappa = float(getattr(res, "kappa", 1.0))
        for term in res.params.index:
            rows.append((name, "params", term, res.params[term]))
            rows.append((name, "bse", term, res.std_errors[term]))
        rows += [(name, "kappa", "", kappa), (name, "nobs", "", res.nobs), (name, "s2", "", res.s2)]
        log += [f"== {name}: {estimator.__name__}.from_formula({formula!r}).fit(cov_type='unadjusted')",
                f"kappa = {kappa!r}", str(res.summary), ""]
    out = pd.DataFrame(rows, columns=["model", "quantity", "name", "value"])
    out["value"] = [format(float(v), ".17g") for v in out["value"]]
    out.to_csv(HERE / "iv_linearmodels.csv", index=False)
    (HERE / "iv_linearmodels_session.txt").write_text("\n".join(log) + "\n")
    print("\n".join(log))


if __name__ == "__main__":
    main()
