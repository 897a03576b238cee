"""Write the wide data and lavaan syntax that tests/reference/lavaan_wide.R fits.

Run from the repository root:  python tests/reference/make_lavaan_inputs.py
"""

from pathlib import Path

import sm_multisem as sms

HERE = Path(__file__).parent


def designs():
    """The two designs of the fixture: the article's (balanced) and an unbalanced one."""
    unbalanced = sms.simulate_nested((40, 3, 2), sd=(1.0, 0.8, 1.0), beta=(0.5, 2.0), seed=7)
    rng_keep = sms.simulate_nested((40, 3, 2), sd=(1.0, 1.0, 1.0), seed=8)["y"].to_numpy() > -0.6
    return {
        "article": sms.simulate_article_data(n_clusters=100, seed=2011),
        "unbalanced": unbalanced[rng_keep].reset_index(drop=True),
    }


def main():
    for name, data in designs().items():
        model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
        model.wide_data(fill_absent_covariates=True).to_csv(HERE / f"lavaan_{name}_wide.csv", index=False)
        (HERE / f"lavaan_{name}.lav").write_text(model.to_lavaan() + "\n")


if __name__ == "__main__":
    main()
