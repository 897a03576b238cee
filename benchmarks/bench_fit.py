"""Time the ML fit of ``y ~ x + (1|k) + (1|k:j)`` by sm_multisem, statsmodels MixedLM and lme4.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_fit.py                       # defaults, a few minutes
    PYTHONPATH=. python benchmarks/bench_fit.py --rows 10000 100000 1000000 --article-clusters 2500 25000
    PYTHONPATH=. python benchmarks/bench_fit.py --markdown benchmarks/RESULTS.md

What is timed
-------------
sm_multisem
    ``MultilevelSEM.from_formula("y ~ x + (1|k) + (1|k:j)", data).fit()``: from the
    DataFrame in memory to the results object (formula, layout, fit and covariance).
MixedLM
    ``smf.mixedlm("y ~ x", data, groups="k", re_formula="1", vc_formula={"j": "0 + C(j)"})``
    and ``.fit(reml=False, ...)``: from the DataFrame to the results object. The model is
    built once per repeat; the build time is also shown on its own. Two convergence
    settings are available: ``tight`` is ``sm_multisem.output.compare.TIGHT_FIT`` (BFGS,
    gtol 1e-7) and ``default`` is ``MixedLM.fit``'s own defaults.
lme4
    ``lmer(y ~ x + (1 | k/j), REML = FALSE)`` with lme4's default control, in an
    ``Rscript`` subprocess that reads a CSV written here; only the ``lmer`` call is timed
    (inside R). Skipped with a message when Rscript or lme4 is missing.

Each time is the median of ``--repeats`` runs. MixedLM and lme4 stop after one run when
that run took longer than ``--once-above`` seconds (marked ``*``). MixedLM is skipped for a
size whose time, extrapolated from the smaller sizes of the same design (or from a pilot
fit), exceeds ``--mixedlm-limit`` seconds.

Peak memory is the ``tracemalloc`` peak (Python and NumPy allocations) of a separate,
untimed run, above what was allocated before it started: model construction plus fit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import scipy  # noqa: E402
import statsmodels  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
from statsmodels.tools.sm_exceptions import ConvergenceWarning  # noqa: E402

import sm_multisem as sms  # noqa: E402
from sm_multisem.output.compare import TIGHT_FIT  # noqa: E402
from sm_multisem.compile.pattern_path import pattern_likelihood  # noqa: E402

FORMULA = "y ~ x + (1|k) + (1|k:j)"
MIXEDLM_SETTINGS = {"tight": dict(TIGHT_FIT), "default": {}}
#: Mean rows per district of the "districts" design: 10 schools of 22.5 students.
#: Pilot sizes used to extrapolate MixedLM's time when no smaller size was run.
PILOT = {"districts": 10_000, "article": 500}

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(lme4))
d <- read.csv(args[1])
d$k <- factor(d$k)
d$j <- factor(d$j)
repeats <- as.integer(args[2])
once_above <- as.numeric(args[3])
# warm-up on a small slice, so that the first timed call does not pay for lazy loading
invisible(lmer(y ~ x + (1 | k/j), data = droplevels(d[d$k %in% levels(d$k)[1:20], ]), REML = FALSE))
for (r in seq_len(repeats)) {
  invisible(gc())
  t0 <- Sys.time()
  fit <- lmer(y ~ x + (1 | k/j), data = d, REML = FALSE)
  elapsed <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  cat(sprintf("time %.6f\n", elapsed))
  if (r == 1 && elapsed > once_above) break
}
cat(sprintf("llf %.10f\n", as.numeric(logLik(fit))))
vc <- as.data.frame(VarCorr(fit))
cat(sprintf("params %.10g %.10g %.10g %.10g %.10g\n", fixef(fit)[1], fixef(fit)[2],
            vc$vcov[vc$grp == "k"], vc$vcov[vc$grp == "j:k"], vc$vcov[vc$grp == "Residual"]))
msgs <- fit@optinfo$conv$lme4$messages
cat(sprintf("converged %s\n", if (is.null(msgs)) "yes" else gsub("\n", " ", paste(msgs, collapse = "; "))))
cat(sprintf("optimizer %s\n", fit@optinfo$optimizer))
"""


# --------------------------------------------------------------------------- data
def simulate_article(n_clusters: int, seed: int) -> pd.DataFrame:
    """The article's design: K clusters, J=2 units, I=2 observations (``sm_multisem.simulate``)."""
    return sms.simulate_article_data(n_clusters=n_clusters, n_units=2, n_obs=2, seed=seed + n_clusters)


def make_data(design: str, size: int, seed: int) -> pd.DataFrame:
    return sms.simulate_districts(size, seed) if design == "districts" else simulate_article(size, seed)


# -------------------------------------------------------------------------- fitters
def fit_sms(data: pd.DataFrame):
    return sms.MultilevelSEM.from_formula(FORMULA, data).fit()


def build_mixedlm(data: pd.DataFrame):
    return smf.mixedlm("y ~ x", data, groups="k", re_formula="1", vc_formula={"j": "0 + C(j)"})


def fit_mixedlm(model, setting: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(reml=False, **MIXEDLM_SETTINGS[setting])


def timed(func, *args):
    gc.collect()
    start = time.perf_counter()
    out = func(*args)
    return time.perf_counter() - start, out


def peak_memory_mb(func) -> float:
    """tracemalloc peak of ``func()`` above the memory traced when it starts, in MB."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        func()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - base) / 1e6


@dataclass
class Timing:
    seconds: float | None = None
    runs: int = 0
    note: str = ""


@dataclass
class Row:
    design: str
    size: int
    rows: int
    clusters: int
    units: int
    sms: Timing = field(default_factory=Timing)
    sms_llf: float = math.nan
    sms_converged: bool | None = None
    sms_peak: float = math.nan
    input_mb: float = math.nan  # the DataFrame's columns
    build: Timing = field(default_factory=Timing)
    mixed: dict = field(default_factory=dict)  # setting -> Timing (total: build + fit)
    mixed_llf: dict = field(default_factory=dict)
    mixed_converged: dict = field(default_factory=dict)
    mixed_peak: float = math.nan
    mixed_peak_setting: str = ""
    lme4: Timing = field(default_factory=Timing)
    lme4_llf: float = math.nan
    lme4_converged: str = ""


# ------------------------------------------------------------------------ lme4 runner
def lme4_available() -> tuple[bool, str]:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False, "Rscript not found on PATH"
    probe = subprocess.run(
        [rscript, "-e", 'suppressPackageStartupMessages(library(lme4)); cat(R.version.string, "| lme4",'
                        ' as.character(packageVersion("lme4")), "| LAPACK", basename(La_library()))'],
        capture_output=True, text=True,
    )
    if probe.returncode != 0:
        return False, "R package lme4 not available: " + probe.stderr.strip().splitlines()[-1]
    return True, probe.stdout.strip()


def run_rscript(script_text: str, args: list[str], workdir: Path, timeout: float | None = None) -> dict:
    """Run an R script that prints ``key value`` lines; ``time`` lines collect in ``times``.

    Numbers become floats (``params``: a list of them); other values stay strings.
    """
    script = workdir / "fit.R"
    script.write_text(script_text)
    proc = subprocess.run(["Rscript", str(script), *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed: {proc.stderr.strip()[-500:]}")
    out: dict = {"times": []}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "time":
            out["times"].append(float(value))
        elif key == "llf":
            out["llf"] = float(value)
        elif key == "params":
            out["params"] = [float(v) for v in value.split()]
        elif key:
            out[key] = value
    if not out["times"] or "llf" not in out:
        raise RuntimeError(f"unexpected Rscript output: {proc.stdout.strip()[-500:]}")
    return out


def run_lme4(data: pd.DataFrame, repeats: int, once_above: float, timeout: float, workdir: Path) -> dict:
    csv = workdir / "data.csv"
    data[["k", "j", "x", "y"]].to_csv(csv, index=False, float_format="%.17g")
    return run_rscript(R_SCRIPT, [str(csv), str(repeats), str(once_above)], workdir, timeout)


# ---------------------------------------------------------------------- extrapolation
def predict(history: list[tuple[int, float]], rows: int) -> float | None:
    """Seconds at ``rows`` from earlier (rows, seconds): power law through the last two
    points, exponent clamped to [1, 2]; linear in rows from a single point."""
    if not history:
        return None
    history = sorted(history)
    n1, t1 = history[-1]
    exponent = 1.0
    if len(history) >= 2:
        n0, t0 = history[-2]
        if n1 > n0 and t0 > 0 and t1 > 0:
            exponent = min(2.0, max(1.0, math.log(t1 / t0) / math.log(n1 / n0)))
    return t1 * (rows / n1) ** exponent


# ---------------------------------------------------------------------------- driver
def run(args) -> tuple[list[Row], list[str]]:
    notes: list[str] = []
    lme4_ok, lme4_info = (False, "disabled by --no-lme4") if args.no_lme4 else lme4_available()
    if not lme4_ok:
        notes.append(f"lme4 skipped: {lme4_info}")
    settings = [] if args.no_mixedlm else list(dict.fromkeys(args.mixedlm_fit))

    # warm-up: imports and first-call overheads stay out of the timings
    warm = sms.simulate_districts(2000, 0)
    fit_sms(warm)
    for setting in settings:
        fit_mixedlm(build_mixedlm(warm), setting)

    plan = [("districts", n) for n in sorted(args.rows)] + [("article", k) for k in sorted(args.article_clusters)]
    rows_out: list[Row] = []
    history: dict[tuple[str, str], list[tuple[int, float]]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench_fit_"))
    try:
        for design, size in plan:
            data = make_data(design, size, args.seed)
            row = Row(design, size, len(data), data["k"].nunique(), int(data.groupby(["k", "j"]).ngroups))
            print(f"[{design} {size:,}] {row.rows:,} rows, {row.clusters:,} clusters, {row.units:,} units",
                  file=sys.stderr, flush=True)

            # sm_multisem
            times, res = [], None
            for _ in range(args.repeats):
                seconds, res = timed(fit_sms, data)
                times.append(seconds)
            row.sms = Timing(statistics.median(times), len(times))
            row.sms_llf, row.sms_converged = float(res.llf), bool(res.converged)
            if pattern_likelihood(res.model, reml=False) is not None:
                notes.append(f"sm_multisem at {design} {row.rows:,} rows: fitted on the pattern path (the wide "
                             "model's likelihood by missingness pattern; see README)")
            row.sms_peak = peak_memory_mb(lambda: fit_sms(data))
            row.input_mb = data.memory_usage(index=False, deep=True).sum() / 1e6
            del res

            # MixedLM
            build_times: list[float] = []
            for setting in settings:
                key = (design, setting)
                if not history.get(key) and row.rows > 10 * _pilot_rows(design):
                    pilot = make_data(design, PILOT[design], args.seed)
                    b, m = timed(build_mixedlm, pilot)
                    f, _ = timed(fit_mixedlm, m, setting)
                    history.setdefault(key, []).append((len(pilot), b + f))
                    notes.append(f"MixedLM {setting}, {design}: pilot fit at {len(pilot):,} rows took "
                                 f"{b + f:.2f} s (used only to extrapolate)")
                expected = predict(history.get(key, []), row.rows)
                if expected is not None and expected > args.mixedlm_limit:
                    row.mixed[setting] = Timing(None, 0, "skipped")
                    notes.append(f"MixedLM {setting} skipped at {design} {row.rows:,} rows: extrapolated "
                                 f"{expected:,.0f} s > --mixedlm-limit {args.mixedlm_limit:.0f} s")
                    continue
                totals, fit_res = [], None
                for r in range(args.repeats):
                    b, model = timed(build_mixedlm, data)
                    f, fit_res = timed(fit_mixedlm, model, setting)
                    build_times.append(b)
                    totals.append(b + f)
                    del model
                    if r == 0 and b + f > args.once_above:
                        break
                row.mixed[setting] = Timing(statistics.median(totals), len(totals))
                row.mixed_llf[setting] = float(fit_res.llf)
                row.mixed_converged[setting] = bool(fit_res.converged)
                history.setdefault(key, []).append((row.rows, row.mixed[setting].seconds))
                del fit_res
            if build_times:
                row.build = Timing(statistics.median(build_times), len(build_times))
            ran = [s for s in settings if row.mixed.get(s) and row.mixed[s].seconds is not None]
            if ran:
                setting = "default" if "default" in ran else ran[0]
                if row.mixed[setting].seconds <= args.memory_max_seconds:
                    row.mixed_peak = peak_memory_mb(lambda: fit_mixedlm(build_mixedlm(data), setting))
                    row.mixed_peak_setting = setting
                else:
                    notes.append(f"MixedLM peak memory not measured at {design} {row.rows:,} rows "
                                 f"(a fit takes more than --memory-max-seconds {args.memory_max_seconds:.0f} s)")

            # lme4
            if lme4_ok:
                try:
                    out = run_lme4(data, args.repeats, args.once_above, args.lme4_timeout, workdir)
                    row.lme4 = Timing(statistics.median(out["times"]), len(out["times"]))
                    row.lme4_llf = out.get("llf", math.nan)
                    row.lme4_converged = out.get("converged", "?")
                    if row.lme4_converged != "yes":
                        notes.append(f"lme4 at {design} {row.rows:,} rows: {row.lme4_converged}")
                        row.lme4_converged = "warning"
                    if out.get("optimizer") and not any(n.startswith("lme4 optimizer") for n in notes):
                        notes.append(f"lme4 optimizer: {out['optimizer']} (lmerControl defaults)")
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    row.lme4 = Timing(None, 0, "failed")
                    notes.append(f"lme4 failed at {design} {row.rows:,} rows: {str(err)[:300]}")
            rows_out.append(row)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if lme4_ok:
        notes.insert(0, f"R: {lme4_info}")
    return rows_out, notes


def _pilot_rows(design: str) -> int:
    return PILOT[design] if design == "districts" else 4 * PILOT[design]


# ---------------------------------------------------------------------------- output
def _seconds(t: Timing, repeats: int) -> str:
    if t.seconds is None:
        return t.note or "-"
    return f"{t.seconds:.3f}" + ("*" if t.runs < repeats else "")


def _ratio(t: Timing, base: Timing) -> str:
    if t.seconds is None or base.seconds is None:
        return "-"
    return f"{t.seconds / base.seconds:.1f}x"


def _diff(value: float, ref: float) -> str:
    return "-" if math.isnan(value) or math.isnan(ref) else f"{value - ref:+.2e}"


def _table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body)])


def _yes(flag) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def report(rows: list[Row], notes: list[str], args) -> str:
    settings = [] if args.no_mixedlm else list(dict.fromkeys(args.mixedlm_fit))
    header = ["design", "rows", "clusters", "units", "sm_multisem s"]
    header += [f"MixedLM {s} s" for s in settings] + (["(MixedLM build s)"] if settings else [])
    header += ["lme4 s"] + [f"MixedLM {s}/sms" for s in settings] + ["lme4/sms"]
    body = []
    for r in rows:
        cells = [r.design, f"{r.rows:,}", f"{r.clusters:,}", f"{r.units:,}", _seconds(r.sms, args.repeats)]
        cells += [_seconds(r.mixed.get(s, Timing()), args.repeats) for s in settings]
        cells += [_seconds(r.build, r.build.runs)] if settings else []
        cells += [_seconds(r.lme4, args.repeats)] + [_ratio(r.mixed.get(s, Timing()), r.sms) for s in settings]
        cells += [_ratio(r.lme4, r.sms)]
        body.append(cells)
    timing = _table(header, body)

    header = ["design", "rows", "llf sm_multisem"] + [f"llf MixedLM {s} - sms" for s in settings]
    header += ["llf lme4 - sms", "converged sms"] + [f"MixedLM {s}" for s in settings] + ["lme4"]
    header += ["input MB", "peak MB sms", "sms / input", "peak MB MixedLM"]
    body = []
    for r in rows:
        cells = [r.design, f"{r.rows:,}", f"{r.sms_llf:.6f}"]
        cells += [_diff(r.mixed_llf.get(s, math.nan), r.sms_llf) for s in settings]
        cells += [_diff(r.lme4_llf, r.sms_llf), _yes(r.sms_converged)]
        cells += [_yes(r.mixed_converged.get(s)) for s in settings]
        cells += [r.lme4_converged or "-", f"{r.input_mb:.1f}", f"{r.sms_peak:.1f}", f"{r.sms_peak / r.input_mb:.1f}x"]
        cells += [f"{r.mixed_peak:.1f}" + (" (default fit)" if r.mixed_peak_setting == "default" and len(settings) > 1
                                            else "") if not math.isnan(r.mixed_peak) else "-"]
        body.append(cells)
    accuracy = _table(header, body)

    legend = [
        f"Times: median of up to {args.repeats} runs, wall clock seconds; * = fewer runs "
        f"(the first took more than {args.once_above:g} s); skipped = see Notes.",
        "sm_multisem: from_formula + fit (DataFrame -> results, covariance included).",
    ]
    if settings:
        legend.append(
            "MixedLM: smf.mixedlm(vc_formula={'j': '0 + C(j)'}) build + fit(reml=False); "
            + "; ".join(f"{s} = {MIXEDLM_SETTINGS[s] or 'MixedLM.fit defaults'}" for s in settings)
            + ". The build column is the part of each MixedLM time spent building the model."
        )
    legend += [
        "lme4: lmer(y ~ x + (1 | k/j), REML = FALSE) in Rscript, only the lmer call timed.",
        "Ratios: fitter seconds / sm_multisem seconds (above 1 = sm_multisem faster).",
        "llf differences: other fitter's llf minus sm_multisem's (positive = the other found a higher "
        "likelihood). lme4 prints llf to 10 decimals.",
        "Peak MB: tracemalloc peak (Python + NumPy allocations) of a separate untimed build + fit, "
        "above the memory in use before it; input MB: the DataFrame's columns (k, j, x, y).",
    ]
    parts = ["Timing", timing, "", "Log-likelihood, convergence and memory", accuracy, "", *legend]
    if notes:
        parts += ["", "Notes:", *(f"- {n}" for n in notes)]
    return "\n".join(parts)


def source_revision() -> str:
    """Git commit of the package, with a note when its files differ from the commit."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %cs"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "sm_multisem"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"commit {commit}" + (" + uncommitted changes" if dirty else "")


def machine_description() -> list[str]:
    model, cores = platform.processor() or "unknown CPU", os.cpu_count()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        model = fields.get("Model name", model)
        cores = (f"{fields.get('CPU(s)', cores)} CPU(s) ({fields.get('Socket(s)', '?')} socket(s) x "
                 f"{fields.get('Core(s) per socket', '?')} core(s) x {fields.get('Thread(s) per core', '?')} "
                 f"thread(s))")
    except (OSError, ValueError):
        pass
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f", {mem_gb:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        memory = ""
    return [
        f"Machine: {model}, {cores}{memory}, {platform.system()} {platform.release()}",
        f"sm_multisem source: {source_revision()}",
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"pandas {pd.__version__}, statsmodels {statsmodels.__version__}, sm_multisem {sms.__version__}",
    ]


def profile(target_rows: int, seed: int, top: int) -> int:
    """cProfile ``from_formula(...).fit()`` on the districts design; print the top entries."""
    import cProfile
    import pstats

    data = sms.simulate_districts(target_rows, seed)
    fit_sms(sms.simulate_districts(2000, 0))  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    res = fit_sms(data)
    profiler.disable()
    print(f"sm_multisem fit, districts design, {len(data):,} rows, {data['k'].nunique():,} clusters: "
          f"{res.optimum.iterations} L-BFGS-B iterations, {res.optimum.n_evaluations} deviance evaluations")
    stats = pstats.Stats(profiler)
    stats.strip_dirs()
    for key in ("cumulative", "tottime"):
        stats.sort_stats(key).print_stats(top)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000],
                        help="target rows of the 'districts' design (default: 10000 100000)")
    parser.add_argument("--article-clusters", type=int, nargs="*", default=[2500],
                        help="K of the 'article' design, J=2, I=2 (default: 2500)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per fitter; the median is shown (default 3)")
    parser.add_argument("--once-above", type=float, default=20.0,
                        help="MixedLM and lme4 run once when the first run takes longer (seconds, default 20)")
    parser.add_argument("--mixedlm-fit", nargs="+", choices=list(MIXEDLM_SETTINGS), default=["tight", "default"],
                        help="MixedLM convergence settings to time (default: tight default)")
    parser.add_argument("--mixedlm-limit", type=float, default=600.0,
                        help="skip MixedLM where its extrapolated time exceeds this (seconds, default 600)")
    parser.add_argument("--memory-max-seconds", type=float, default=120.0,
                        help="measure MixedLM's peak memory only when a fit takes less (default 120)")
    parser.add_argument("--lme4-timeout", type=float, default=3600.0, help="timeout of one Rscript run (seconds)")
    parser.add_argument("--no-mixedlm", action="store_true", help="do not run MixedLM")
    parser.add_argument("--no-lme4", action="store_true", help="do not run lme4")
    parser.add_argument("--seed", type=int, default=20240611, help="base seed of the simulated data")
    parser.add_argument("--markdown", type=Path, help="also write the output, date and machine to this file")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the benchmark, cProfile one sm_multisem fit at the largest --rows")
    parser.add_argument("--profile-top", type=int, default=25, help="entries shown by --profile (default 25)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.profile:
        return profile(max(args.rows or [100_000]), args.seed, args.profile_top)

    command = "PYTHONPATH=. python benchmarks/bench_fit.py" + "".join(f" {a}" for a in sys.argv[1:])
    started = dt.datetime.now().astimezone()
    header = [f"Date: {started:%Y-%m-%d %H:%M %Z}", *machine_description(), f"Command: {command}"]
    print("\n".join(header), flush=True)
    wall = time.perf_counter()
    rows, notes = run(args)
    text = report(rows, notes, args)
    footer = f"Total benchmark wall time: {time.perf_counter() - wall:.0f} s"
    print()
    print(text)
    print(footer)
    if args.markdown:
        args.markdown.write_text(
            "# Fit benchmark results\n\n"
            + "".join(f"- {line}\n" for line in header)
            + "\nModel: `y ~ x + (1|k) + (1|k:j)` by maximum likelihood; see `benchmarks/README.md`.\n\n"
            + "```text\n" + text + "\n" + footer + "\n```\n"
        )
        print(f"written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
