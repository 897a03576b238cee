"""Write the lavaan syntax that tests/reference/lavaan_scoretests.R uses for score tests of every constraint.

The article's standard model, ``y ~ x + (1|k/j)`` on ``simulate_article_data(n_clusters=100,
seed=2011)`` (the wide data are ``lavaan_article_wide.csv``, written by make_lavaan_inputs.py).
For each constraint label of the wide model (``c``, ``bx``, ``S_j``, ``S_e``) the syntax gives
that label's parameter its own label at every position (``bx_1_1``, ``bx_1_2``, ...; ``S_j_1``,
``S_j_2`` for the latents ``J1``, ``J2``) and no equality constraint; the R script adds them.

Written here:

* ``lavaan_scoretests_<label>.lav``: the syntax of each family;
* ``lavaan_scoretests_labels.csv``: for each family, its per-position lavaan labels in
  position order and the name of the same constraint in ``score_tests()`` (``x[1_2]``).

Run from the repository root:  python tests/reference/make_lavaan_scoretests_inputs.py
"""

from pathlib import Path

import pandas as pd

import sm_multisem as sms
from sm_multisem.output.export import to_lavaan

HERE = Path(__file__).parent
#: Constraint label of the wide model -> the name of its parameter in the results
FAMILIES = {"c": "Intercept", "bx": "x", "S_j": "var(k:j)", "S_e": "var(Residual)"}


def main():
    data = sms.simulate_article_data(n_clusters=100, seed=2011)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    table = model.parameter_table
    stems = (model.table.outcome, *model.table.latent_bases)
    rows = []
    for label, parameter in FAMILIES.items():
        relabelled = table.copy()
        at = relabelled.index[relabelled["label"] == label]
        # the position is what follows the outcome's or the latent's stem: y1_2 -> 1_2, J2 -> 2
        positions = [next(lhs[len(s):] for s in stems if lhs.startswith(s)) for lhs in relabelled.loc[at, "lhs"]]
        relabelled.loc[at, "label"] = [f"{label}_{p}" for p in positions]
        (HERE / f"lavaan_scoretests_{label}.lav").write_text(to_lavaan(relabelled) + "\n")
        rows += [(label, f"{label}_{p}", f"{parameter}[{p}]") for p in positions]
    pd.DataFrame(rows, columns=["family", "lavaan_label", "constraint"]).to_csv(
        HERE / "lavaan_scoretests_labels.csv", index=False)


if __name__ == "__main__":
    main()
