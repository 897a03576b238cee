# Helpers shared by joint_lavaan.R, adf_lavaan.R and iv_lavaan.R: fit a lavaan model to tight
# convergence and write its numbers as tidy rows
#   model, quantity, name, label, value
# (value formatted with 17 significant digits; name is lhs, op, rhs pasted together, e.g.
# "y1_1~x1_1", "K~~K", "y1_1~1"; label is lavaan's label, empty when the parameter has none).
suppressPackageStartupMessages(library(lavaan))

fmt <- function(v) sprintf("%.17g", v)

# The gradient of lavaan's objective (the fit function, on the scale of one observation:
# lavaan divides by N) at the estimates, with the entries of parameters that share a label
# summed: the gradient with respect to the free parameters of the constrained model, which
# is 0 at the optimum.
constrained_gradient <- function(fit) {
  g <- lavInspect(fit, "gradient")
  tapply(g, names(g), sum)
}

# Fit with nlminb at rel.tol = 1e-14; nlminb often stops there with "false convergence"
# at a gradient of about 1e-6, so the same model is also fitted with BFGS (optim, reltol =
# 1e-15), and the converged fit with the smaller constrained gradient is kept. SEs from the
# observed information (lavaan's "hessian": finite differences of the analytic gradient).
# `...` are the arguments of sem() apart from control and optim.method, and include
# information = "observed" for the ML fits.
# Returns the fit, with attributes "optimizer" and "args" (the arguments).
fit_tight <- function(...) {
  fits <- list(
    nlminb = suppressWarnings(sem(..., control = list(rel.tol = 1e-14, iter.max = 100000, eval.max = 100000))),
    BFGS = suppressWarnings(sem(..., optim.method = "BFGS", control = list(reltol = 1e-15, maxit = 100000)))
  )
  ok <- vapply(fits, function(f) isTRUE(lavInspect(f, "converged")), logical(1))
  if (!any(ok)) {
    fits$nlminb_default <- suppressWarnings(sem(...))
    ok <- vapply(fits, function(f) isTRUE(lavInspect(f, "converged")), logical(1))
  }
  stopifnot(any(ok))
  fits <- fits[ok]
  grad <- vapply(fits, function(f) max(abs(constrained_gradient(f))), numeric(1))
  best <- fits[[which.min(grad)]]
  attr(best, "optimizer") <- names(fits)[which.min(grad)]
  attr(best, "args") <- list(...)
  best
}

# The same model at the same estimates (start = fit, optim.method = "none": no iterations),
# with its SEs from information = `information`.
refit_se <- function(fit, information) {
  args <- attr(fit, "args")
  args$information <- information
  do.call("sem", c(args, list(start = fit, optim.method = "none")))
}

# Free parameters of the constrained model (parameters sharing a label count once);
# lavInspect(fit, "npar") counts them before the equality constraints ("npar_unconstrained").
npar <- function(fit) {
  pt <- parTable(fit)
  free <- pt[pt$free > 0, ]
  n <- length(unique(ifelse(free$label != "", free$label, paste0(free$lhs, free$op, free$rhs))))
  stopifnot(n == fitMeasures(fit, "npar"))
  n
}

# Rows describing a fit: convergence, log-likelihood, parameter count, then every free
# parameter's estimate and its SEs from the observed ("se_observed") and the expected
# ("se_expected") information (lavaan's default h1.information = "structured"); with
# expected = FALSE only the fit's own SEs, as quantity "se".
tidy_fit <- function(model_name, fit, expected = TRUE) {
  g <- constrained_gradient(fit)
  rows <- data.frame(
    model = model_name,
    quantity = c("converged", "iterations", "max_abs_gradient", "logl", "npar", "npar_unconstrained", "ntotal"),
    name = "", label = "",
    value = fmt(c(as.numeric(lavInspect(fit, "converged")), lavInspect(fit, "iterations"), max(abs(g)),
                  as.numeric(logLik(fit)), npar(fit), lavInspect(fit, "npar"), lavInspect(fit, "ntotal")))
  )
  rows <- rbind(rows, data.frame(model = model_name, quantity = "optimizer", name = attr(fit, "optimizer"),
                                 label = "", value = ""))
  pe <- parameterEstimates(fit, remove.nonfree = TRUE)
  key <- paste0(pe$lhs, pe$op, pe$rhs)
  rows <- rbind(rows,
                data.frame(model = model_name, quantity = "est", name = key, label = pe$label, value = fmt(pe$est)),
                data.frame(model = model_name, quantity = if (expected) "se_observed" else "se", name = key,
                           label = pe$label, value = fmt(pe$se)))
  if (!expected) {
    return(rows)
  }
  expected <- parameterEstimates(refit_se(fit, "expected"), remove.nonfree = TRUE)
  stopifnot(identical(paste0(expected$lhs, expected$op, expected$rhs), key), max(abs(expected$est - pe$est)) < 1e-12)
  rbind(rows, data.frame(model = model_name, quantity = "se_expected", name = key, label = pe$label,
                         value = fmt(expected$se)))
}

# Estimates by label (the first parameter carrying each label), for printing.
by_label <- function(fit) {
  pe <- as.data.frame(parameterEstimates(fit))
  pe <- pe[pe$label != "" & !duplicated(pe$label), c("label", "est", "se")]
  rownames(pe) <- NULL
  pe
}

session_lines <- function() {
  c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan")))
}
