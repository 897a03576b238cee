# Covariates missing at random, fitted jointly with the outcomes: the article's wide,
# constrained SEM (joint.lav, written by make_joint_inputs.py from
# MultilevelSEM.from_formula("y ~ x + (1|k/j)", complete).to_lavaan()) fitted by FIML with
# fixed.x = FALSE, so that the means, variances and covariances of the four x columns are
# free (saturated) parameters and rows with missing x are kept.
# Run from the repository root:  Rscript tests/reference/joint_lavaan.R
#
# Writes joint_lavaan.csv, tidy, one row per quantity:
#   model, quantity, name, label, value
# quantity: converged (1/0), iterations, max_abs_gradient (of lavaan's objective, which is
# minus the log-likelihood divided by N up to a constant, summed within each label),
# optimizer (in name: "nlminb" or "BFGS", see lavaan_tidy.R), logl, npar (free parameters
# of the constrained model: shared labels count once; npar_unconstrained counts them before
# the equality constraints, as lavInspect(fit, "npar") does), ntotal (rows = counties), and per
# free parameter (name = lhs op rhs, e.g. "y1_1~x1_1", "x1_1~~x1_2", "x1_1~1"): est,
# se_observed (information = "observed", lavaan's finite-difference Hessian of its
# objective), se_expected (information = "expected", h1.information = "structured": the
# expected information of each missing-data pattern, summed over the rows).
# Also rows with quantity "x_marginal_logl" and "logl_difference" (see below) and the
# share of missing x ("x_missing_share").
#
# models:
#   missing        joint_wide.csv (x partly missing), missing = "ml", fixed.x = FALSE
#   complete       joint_wide_complete.csv (x before deletion), missing = "ml", fixed.x = FALSE
#   complete_fixedx  the same data, fixed.x = TRUE: logl of y given x (the package's llf)
#   missing_mlx    joint_wide.csv, missing = "ml.x", fixed.x = TRUE. lavaan 0.6.14 accepts it
#                  and keeps the rows with missing x, but it is NOT the joint model: the
#                  means and covariances of the x are fixed (se 0, not counted in npar) at
#                  the EM estimates of a saturated normal of all eight columns
#                  (lavInspect(fit, "sampstat.h1"); checked below), and logl leaves out an
#                  x part as fixed.x does, so neither the estimates (bx 2.2111 against
#                  2.2139) nor logl equal those of "missing". Only a second, rough check.
#
# What lavaan 0.6.14 reports as logl:
# * fixed.x = FALSE: the log-likelihood of the joint normal of (y, x), each row contributing
#   the density of its observed cells (FIML). On complete data, since the x part is
#   saturated and its parameters are not shared with the y-given-x part, it equals the
#   conditional logl of y given x (fixed.x = TRUE) plus the normal logl of the x columns
#   at their sample means and (divisor N) covariance; "x_marginal_logl" is that term,
#   computed here directly, and "logl_difference" = logl(complete) - logl(complete_fixedx).
source("tests/reference/lavaan_tidy.R")

model <- paste(readLines("tests/reference/joint.lav"), collapse = "\n")
wide <- read.csv("tests/reference/joint_wide.csv")
complete <- read.csv("tests/reference/joint_wide_complete.csv")
xs <- c("x1_1", "x1_2", "x2_1", "x2_2")

normal_logl <- function(X) {
  n <- nrow(X)
  S <- cov(X) * (n - 1) / n
  -n / 2 * (ncol(X) * log(2 * pi) + as.numeric(determinant(S)$modulus) + ncol(X))
}

log <- character()
say <- function(...) {
  text <- capture.output(...)
  cat(text, sep = "\n")
  log <<- c(log, text)
}

fits <- list(
  missing = fit_tight(model, data = wide, missing = "ml", fixed.x = FALSE, information = "observed"),
  complete = fit_tight(model, data = complete, missing = "ml", fixed.x = FALSE, information = "observed"),
  complete_fixedx = fit_tight(model, data = complete, missing = "ml", fixed.x = TRUE, information = "observed"),
  missing_mlx = fit_tight(model, data = wide, missing = "ml.x", fixed.x = TRUE, information = "observed")
)
h1 <- lavInspect(fits$missing_mlx, "sampstat.h1")
pe_mlx <- as.data.frame(parameterEstimates(fits$missing_mlx))
stopifnot(all(abs(pe_mlx$est[pe_mlx$lhs %in% xs & pe_mlx$op == "~1"] - h1$mean[xs]) < 1e-12))
out <- do.call(rbind, lapply(names(fits), function(nm) tidy_fit(nm, fits[[nm]])))
x_marginal <- normal_logl(as.matrix(complete[xs]))
difference <- as.numeric(logLik(fits$complete)) - as.numeric(logLik(fits$complete_fixedx))
stopifnot(abs(difference - x_marginal) < 1e-6)
out <- rbind(out, data.frame(
  model = c("complete", "complete", "missing"),
  quantity = c("x_marginal_logl", "logl_difference", "x_missing_share"),
  name = c("", "complete - complete_fixedx", ""), label = "",
  value = fmt(c(x_marginal, difference, mean(is.na(as.matrix(wide[xs])))))
))
write.csv(out, "tests/reference/joint_lavaan.csv", row.names = FALSE)

say(cat("model syntax (joint.lav):\n", model, "\n\n"))
for (nm in names(fits)) {
  fit <- fits[[nm]]
  opts <- lavInspect(fit, "options")
  say(cat(sprintf(paste0("== %s: missing = %s, fixed.x = %s, optimizer %s, converged %s, iterations %d,\n",
                         "   max |constrained gradient| %.3g, logl %.17g, npar %d, ntotal %d, nobs used %d\n"),
                  nm, opts$missing, opts$fixed.x, attr(fit, "optimizer"), lavInspect(fit, "converged"),
                  lavInspect(fit, "iterations"), max(abs(constrained_gradient(fit))), as.numeric(logLik(fit)),
                  npar(fit), lavInspect(fit, "ntotal"), lavInspect(fit, "nobs"))))
  say(print(by_label(fit), digits = 10))
  say(cat("   exogenous (ov.x):", lavNames(fit, "ov.x"), "\n"))
  if (!opts$fixed.x || opts$missing == "ml.x") {
    pe <- as.data.frame(parameterEstimates(fit))
    say(print(pe[pe$lhs %in% xs & pe$op %in% c("~~", "~1"), c("lhs", "op", "rhs", "est", "se")],
              digits = 8, row.names = FALSE))
  }
}
say(cat(sprintf("x marginal logl (complete data, sample moments, divisor N): %.17g\n", x_marginal)))
say(cat(sprintf("logl(complete, fixed.x = FALSE) - logl(complete, fixed.x = TRUE): %.17g\n", difference)))
say(cat(sprintf("share of x missing: %.6f\n", mean(is.na(as.matrix(wide[xs]))))))
writeLines(c(session_lines(), "", log), "tests/reference/joint_lavaan_session.txt")
