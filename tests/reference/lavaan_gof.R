# Fit statistics (lavaan's fitMeasures) of the wide models written by make_lavaan_inputs.py,
# make_lavaan_score_inputs.py and make_lavaan_gof_inputs.py, fitted as lavaan_wide.R fits them
# (FIML, covariates conditioned on: fixed.x = TRUE).
# Run from the repository root:  Rscript tests/reference/lavaan_gof.R
#
# What lavaan 0.6.14 computes (print lavaan:::lav_fit_rmsea, lav_fit_rmsea_ci, lav_fit_cfi,
# lav_fit_tli, lav_fit_srmr_lavobject, lav_partable_indep_or_unrestricted):
#
# * chisq = 2 (unrestricted.logl - logl); both log-likelihoods leave out the covariates'
#   own (fixed.x), so logl is that of the outcomes given the covariates, and aic/bic count
#   the free parameters only, with N = ntotal = rows of the wide data (clusters).
# * The baseline model (conditional.x = FALSE, mimic = "lavaan") has free means and
#   variances of the outcomes, the covariates' moments fixed at their sample values, and
#   every other covariance 0.
# * rmsea uses N (likelihood = "normal"), not N - 1; its 90% interval solves for the
#   noncentrality with uniroot at its default tolerance (about 1e-4), so the bounds carry
#   that error. "rmsea.ci.*.exact" below solve the same equations to 1e-12.
# * srmr (mimic = "lavaan") is srmr_bentler: residual means and covariances of all
#   variables, outcomes and covariates, scaled by the H1 standard deviations, over
#   nvar + nvar (nvar + 1) / 2 elements.
# * With missing outcomes the H1 moments come from EM, by default to 1e-5 in the moments;
#   em.h1.tol = 1e-13 makes them exact to the digits compared here.
# * lavaan's own baseline fit fails on the unbalanced design (nlminb does not converge), so
#   the baseline is also fitted as an explicit lavaan model: the outcomes regressed on every
#   covariate with coefficients fixed at 0, residual covariances fixed at 0. On the complete
#   designs it gives lavaan's baseline.chisq (checked below); "explicit.cfi" and
#   "explicit.tli" are lavaan's CFI and TLI from it.
suppressPackageStartupMessages(library(lavaan))
fmt <- function(v) sprintf("%.17g", v)
measures <- c("chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "baseline.pvalue", "cfi", "tli",
              "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "srmr", "aic", "bic",
              "logl", "unrestricted.logl", "npar", "ntotal")
designs <- c("article", "score_variance", "score_slope", "gof_misfit", "gof_misfit_variance", "gof_pastes",
             "unbalanced")
# nlminb at rel.tol = 1e-11 if it converges, else at lavaan's default (it can stop with
# "false convergence" at the optimum when asked for more than the objective's precision)
fit_wide <- function(model, wide) {
  fit_at <- function(control) {
    suppressWarnings(sem(model, data = wide, missing = "ml", fixed.x = TRUE, em.h1.tol = 1e-13,
                         em.h1.iter.max = 100000L, control = control))
  }
  fit <- fit_at(list(rel.tol = 1e-11, iter.max = 10000))
  if (!lavInspect(fit, "converged")) {
    fit <- fit_at(list())
  }
  stopifnot(lavInspect(fit, "converged"))
  fit
}
# the 90% interval of lav_fit_rmsea_ci, with its roots found to 1e-12
rmsea_ci_exact <- function(X2, df, N) {
  lower <- 0
  if (df >= 1 && pchisq(X2, df) >= 0.95) {
    lower <- sqrt(uniroot(function(l) pchisq(X2, df, ncp = l) - 0.95, c(0, X2), tol = 1e-12)$root / (N * df))
  }
  top <- max(N, 4 * X2)
  upper <- 0
  if (df >= 1 && pchisq(X2, df, ncp = top) <= 0.05 && pchisq(X2, df) >= 0.05) {
    upper <- sqrt(uniroot(function(l) pchisq(X2, df, ncp = l) - 0.05, c(0, top), tol = 1e-12)$root / (N * df))
  }
  c(rmsea.ci.lower.exact = lower, rmsea.ci.upper.exact = upper)
}
independence_syntax <- function(fit) {
  ys <- lavNames(fit, "ov.nox")
  xs <- lavNames(fit, "ov.x")
  pairs <- combn(ys, 2)
  regressions <- if (length(xs)) sprintf("%s ~ %s", ys, paste0("0*", xs, collapse = " + ")) else sprintf("%s ~ 1", ys)
  c(regressions, sprintf("%s ~~ 0*%s", pairs[1, ], pairs[2, ]))
}
out <- list()
for (name in designs) {
  wide <- read.csv(file.path("tests/reference", sprintf("lavaan_%s_wide.csv", name)))
  model <- paste(readLines(file.path("tests/reference", sprintf("lavaan_%s.lav", name))), collapse = "\n")
  fit <- fit_wide(model, wide)
  values <- fitMeasures(fit, measures)
  values <- c(values, rmsea_ci_exact(values[["chisq"]], values[["df"]], values[["ntotal"]]))
  baseline <- fitMeasures(fit_wide(paste(independence_syntax(fit), collapse = "\n"), wide), c("chisq", "df"))
  names(baseline) <- c("explicit.baseline.chisq", "explicit.baseline.df")
  baseline <- c(baseline,
                explicit.cfi = lavaan:::lav_fit_cfi(values[["chisq"]], values[["df"]], baseline[[1]], baseline[[2]]),
                explicit.tli = lavaan:::lav_fit_tli(values[["chisq"]], values[["df"]], baseline[[1]], baseline[[2]]))
  if (!anyNA(wide)) {
    stopifnot(abs(baseline[[1]] - values[["baseline.chisq"]]) < 1e-6 * values[["baseline.chisq"]],
              baseline[[2]] == values[["baseline.df"]])
  }
  values <- c(values, baseline)
  out[[name]] <- data.frame(design = name, measure = names(values), value = fmt(unname(values)))
}
write.csv(do.call(rbind, out), "tests/reference/lavaan_gof.csv", row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan")),
             paste("mimic:", lavInspect(fit, "options")$mimic),
             paste("likelihood:", lavInspect(fit, "options")$likelihood)),
           "tests/reference/lavaan_gof_session.txt")
