"""Time and memory of every score-test family next to the fit, on the districts design, in one run.

    PYTHONPATH=. python benchmarks/bench_scoretests.py [--rows 100000 1000000] [--repeats 1]

For each size: the fit of ``y ~ x + (1|k) + (1|k:j)`` (DataFrame to results), then
``res.score_tests([family])`` for every family (the intercept ``c``, the slope ``bx``, the school
variance ``S_j``, the residual variance ``S_e``, the AR(1) correlation ``rho``) and all of them
together. Memory is the peak traced by ``tracemalloc`` during the call above what was held before
it, as a multiple of the input columns' bytes; times are the fastest of ``--repeats``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import sm_multisem as sms
from bench_fit import FORMULA

FAMILIES = ("c", "bx", "S_j", "S_e", "rho")


def measured(call, repeats: int) -> tuple[float, float, object]:
    """Fastest time of ``call()``, its peak traced memory above what was held before it (bytes), its result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    held = tracemalloc.get_traced_memory()[0]
    call()
    peak = tracemalloc.get_traced_memory()[1] - held
    tracemalloc.stop()
    return best, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for rows in args.rows:
        data = sms.simulate_districts(rows, args.seed)
        input_bytes = data.memory_usage(deep=True, index=False).sum()
        fit_time, _, res = measured(lambda: sms.MultilevelSEM.from_formula(FORMULA, data).fit(), args.repeats)
        print(f"\n{rows:,} rows, {res.model.layout.n_clusters:,} districts, input {input_bytes / 1e6:.0f} MB; "
              f"fit {fit_time:.3f} s")
        print(f"{'families':<12}{'time (s)':>10}{'x fit':>8}{'peak MB':>10}{'x input':>9}  grouping")
        for families in [[f] for f in FAMILIES] + [list(FAMILIES)]:
            seconds, peak, tests = measured(lambda: res.score_tests(families), args.repeats)
            name = families[0] if len(families) == 1 else "all"
            grouping = tests.families["grouping"].iloc[0] if len(families) == 1 else ""
            note = tests.families["note"].iloc[0] if len(families) == 1 else ""
            print(f"{name:<12}{seconds:10.2f}{seconds / fit_time:8.1f}{peak / 1e6:10.0f}{peak / input_bytes:9.1f}  "
                  f"{(grouping or note)[:60]}")


if __name__ == "__main__":
    main()
