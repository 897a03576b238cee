"""Time sm_multisem against lavaan fitting the same wide SEM, on the article's design.

    PYTHONPATH=. python benchmarks/bench_lavaan.py [--clusters 2500 125000] [--repeats 3]

The model is the article's: K clusters of J = 2 units of I = 2 observations, ``y ~ x +
(1|k/j)`` by maximum likelihood. sm_multisem is timed twice: from the long DataFrame in
memory to the results object, as in ``bench_fit.py`` (formula, layout, fit, covariance), and
``fit()`` alone on the model built from it (the fit and the covariance). lavaan fits the wide
data (``model.wide_data()``) with the syntax ``model.to_lavaan()`` writes,
``sem(..., estimator = "ML")``; only the ``sem`` call is timed, inside R, so it is comparable
with sm_multisem's fit alone: neither includes reading or reshaping the data. Both report the same log-likelihood (lavaan's with
``fixed.x = TRUE`` is that of the outcomes given the covariates), which the table checks.
Skipped with a message when Rscript or lavaan is missing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench_fit import FORMULA, fit_sms, machine_description, run_rscript, simulate_article, timed

import sm_multisem as sms

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(lavaan))
wide <- read.csv(args[1])
model <- paste(readLines(args[2]), collapse = "\n")
repeats <- as.integer(args[3])
for (r in seq_len(repeats)) {
  invisible(gc())
  t0 <- Sys.time()
  fit <- sem(model, data = wide, estimator = "ML")
  cat(sprintf("time %.6f\n", as.numeric(difftime(Sys.time(), t0, units = "secs"))))
}
cat(sprintf("llf %.10f\n", as.numeric(logLik(fit))))
cat(sprintf("version %s\n", as.character(packageVersion("lavaan"))))
"""


def run_lavaan(model: sms.MultilevelSEM, repeats: int, workdir: Path) -> dict:
    """lavaan's times and log-likelihood on the model's wide data and syntax."""
    data, syntax = workdir / "wide.csv", workdir / "model.lav"
    model.wide_data().to_csv(data, index=False)
    syntax.write_text(model.to_lavaan())
    return run_rscript(R_SCRIPT, [str(data), str(syntax), str(repeats)], workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, nargs="*", default=[2500, 125_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print("\n".join(machine_description()))
    print(f"Model: {FORMULA} on the article's design (J = 2, I = 2), ML\n")
    columns = ["clusters", "rows", "sms total s", "sms fit s", "lavaan s", "lavaan/sms fit", "lavaan/sms total",
               "llf lavaan - sms"]
    widths = [9, 9, 12, 10, 9, 15, 17, 17]
    print(" ".join(f"{name:>{width}}" for name, width in zip(columns, widths)))
    with tempfile.TemporaryDirectory() as tmp:
        for clusters in args.clusters:
            data = simulate_article(clusters, args.seed)
            totals, fits, res = [], [], None
            for _ in range(args.repeats):
                seconds, res = timed(fit_sms, data)
                totals.append(seconds)
                fits.append(timed(res.model.fit)[0])
            total, fit = statistics.median(totals), statistics.median(fits)
            try:
                lavaan = run_lavaan(res.model, args.repeats, Path(tmp))
            except (RuntimeError, FileNotFoundError) as err:
                print(f"{clusters:>9,} {len(data):>9,} {total:>12.3f} {fit:>10.3f}   lavaan skipped: {err}")
                continue
            theirs = statistics.median(lavaan["times"])
            print(f"{clusters:>9,} {len(data):>9,} {total:>12.3f} {fit:>10.3f} {theirs:>9.3f} {theirs / fit:>14.2f}x "
                  f"{theirs / total:>16.2f}x {lavaan['llf'] - res.llf:>+17.2e}")
    print(f"\nlavaan {lavaan.get('version', '?')}: sem(model.to_lavaan(), wide_data(), estimator = 'ML'), only the sem "
          "call timed (wide data in memory, no reading or reshaping). sm_multisem fit: model.fit() on the model "
          "built from the long data (the fit and the covariance of the estimates), comparable with lavaan's time; "
          "sm_multisem total: from_formula + fit from the long DataFrame (formula, layout and the reshaping "
          f"lavaan's time leaves out). Medians of {args.repeats} runs, wall clock seconds; ratios above 1 = "
          "sm_multisem faster.")


if __name__ == "__main__":
    sys.exit(main())
