"""``python -m sm_multisem``: the source article's example, or a fit of a CSV file.

With no arguments: simulates K=100 counties, J=2 schools in each, I=2 students in each
school with ``y = 2 x + U_k + V_jk + E_ijk``, fits the model as a wide constrained SEM and
as statsmodels ``MixedLM``, and prints both fits and the wide model in Stata ``sem`` syntax.

``python -m sm_multisem fit DATA.csv "y ~ x + (1|k/j)" [--reml] [--cov-type robust]
[--stata] [--lavaan] [--diagram out.svg]`` fits a CSV file and prints the summary.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import pandas as pd

from .model import MultilevelSEM
from .output.diagram import GraphvizMissing
from .simulate import simulate_article_data


def article_example() -> None:
    data = simulate_article_data(n_clusters=100, n_units=2, n_obs=2, beta=2.0, seed=12345)
    print("The article's data: K=100 clusters (k), J=2 units (j) in each, I=2 observations (i) in each unit")
    print(data.head(8).to_string(index=False), "\n")

    model = MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    start = time.perf_counter()
    results = model.fit()
    seconds = time.perf_counter() - start
    print(results.summary())
    print(f"\nMultilevelSEM fit in {seconds:.3f} s\n")

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MixedLM's own optimizer chatter; convergence is reported below
        comparison = results.compare_mixedlm()
    seconds = time.perf_counter() - start
    print(f"MultilevelSEM beside statsmodels MixedLM (fit in {seconds:.3f} s, converged: "
          f"{comparison.attrs['mixedlm_converged']}):")
    print(comparison.to_string(float_format="{:.8g}".format, na_rep=""), "\n")

    print("The same model as the wide, constrained SEM (Stata sem syntax):\n")
    print(model.to_stata())


def fit_csv(args: argparse.Namespace) -> None:
    data = pd.read_csv(args.data)
    model = MultilevelSEM.from_formula(args.formula, data)
    results = model.fit(reml=args.reml, cov_type=args.cov_type)
    print(results.summary())
    if args.stata:
        print("\n" + model.to_stata())
    if args.lavaan:
        print("\n" + model.to_lavaan())
    if args.diagram:
        print(f"\npath diagram written to {results.path_diagram().render(args.diagram)}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        article_example()
        return 0
    parser = argparse.ArgumentParser(prog="python -m sm_multisem", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit a CSV file and print the summary")
    fit.add_argument("data", help="CSV file, one row per observation")
    fit.add_argument("formula", help='e.g. "y ~ x + (1|k/j)"')
    fit.add_argument("--reml", action="store_true", help="REML instead of ML")
    fit.add_argument("--cov-type", default="oim", choices=["oim", "eim", "opg", "robust"],
                     help="covariance of the estimates (default oim)")
    fit.add_argument("--stata", action="store_true", help="also print the wide model as a Stata sem command")
    fit.add_argument("--lavaan", action="store_true", help="also print the wide model in lavaan syntax")
    fit.add_argument("--diagram", metavar="PATH",
                     help="write the path diagram of the fit; the format is the extension (.svg, .png, .pdf need "
                          "Graphviz; .dot, .gv do not)")
    args = parser.parse_args(argv)
    try:
        fit_csv(args)
    except (ValueError, FileNotFoundError, GraphvizMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
