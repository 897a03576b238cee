# An endogenous covariate with instruments in the nested design: the bivariate multilevel
# system of y and x, fitted wide by ML with lavaan on iv_wide.csv (make_iv_inputs.py: 400
# counties, positions p = 1_1, 1_2, 2_1, 2_2; w, z1, z2 exogenous and conditioned on,
# fixed.x = TRUE). At every position p
#   y_p ~ b*x_p + gw*w_p + cy*1
#   x_p ~ p1*z1_p + p2*z2_p + pw*w_p + cx*1
# latents Ky, Jy1, Jy2 (y) and Kx, Jx1, Jx2 (x) with loadings 1; variances S_ky, S_jy (both
# schools), S_kx, S_jx; covariances Ky ~~ C_k*Kx, Jy<j> ~~ C_j*Jx<j>, all other latent
# covariances 0; residual variances S_ey, S_ex and covariance C_e (y_p with x_p), equal
# across positions, no other residual covariances. The syntax is written out by this
# script as iv_<model>.lav.
# Run from the repository root:  Rscript tests/reference/iv_lavaan.R
#
# models:
#   over       instruments z1 and z2 (over-identified)
#   just       z1 only (z2 left out of the model; just identified)
#   over_exog  as "over" with C_k, C_j, C_e fixed at 0 (x exogenous: no cross-equation covariance)
#   just_exog  as "just" with C_k, C_j, C_e fixed at 0
#
# Writes iv_lavaan.csv, tidy, one row per quantity: model, quantity, name, label, value (see
# lavaan_tidy.R; est, se_observed, se_expected per free parameter, name lhs op rhs), and
# per model also
#   logl_conditional  the log-likelihood of (y, x) given the exogenous columns, computed here
#                     from the model-implied joint moments (lavInspect(fit, "implied")),
#                     row by row, as a dense multivariate normal: what an independent
#                     implementation of the conditional model computes;
#   logl_exogenous    the normal log-likelihood of the exogenous columns at their sample
#                     means and covariance (divisor N); the joint log-likelihood of all
#                     columns is logl + logl_exogenous.
#
# lavaan 0.6.14's logl with fixed.x = TRUE (conditional.x = FALSE, the default for ML):
# the model is fitted to the joint moments of all observed columns, the exogenous columns'
# means and covariances fixed at their sample values (divisor N), and logLik(fit) is the
# joint log-likelihood MINUS the exogenous columns' own normal log-likelihood at those
# sample moments, i.e. exactly the conditional log-likelihood of (y, x) given (w, z1, z2):
# logl == logl_conditional (checked below to 1e-8). It does not include the exogenous
# part; npar counts only the free parameters of the conditional model.
source("tests/reference/lavaan_tidy.R")

wide <- read.csv("tests/reference/iv_wide.csv")
positions <- c("1_1", "1_2", "2_1", "2_2")

iv_syntax <- function(instruments, cross = TRUE) {
  pn <- function(v) paste0(v, positions)                       # y1_1, ...
  pz <- function(z) paste0(z, "_", positions)                  # z1_1_1, ...
  zs <- if (length(instruments)) {
    sapply(instruments, function(z) paste0("p", substring(z, 2), "*", pz(z)))
  }
  x_rhs <- apply(cbind(zs, paste0("pw*", pn("w")), "cx*1"), 1, paste, collapse = " + ")
  ones <- function(vars) paste0("1*", vars, collapse = " + ")
  latents <- c("Ky", "Jy1", "Jy2", "Kx", "Jx1", "Jx2")
  free_cov <- c("Ky~~Kx", "Jy1~~Jx1", "Jy2~~Jx2")
  pairs <- combn(latents, 2)
  others <- pairs[, !paste0(pairs[1, ], "~~", pairs[2, ]) %in% free_cov, drop = FALSE]
  cross_label <- function(label) if (cross) paste0(label, "*") else "0*"
  c("# regressions: equal labels are equality constraints",
    sprintf("%s ~ b*%s + gw*%s + cy*1", pn("y"), pn("x"), pn("w")),
    sprintf("%s ~ %s", pn("x"), x_rhs),
    "# random effects: latent variables with loadings fixed at 1",
    paste("Ky =~", ones(pn("y"))), paste("Jy1 =~", ones(pn("y")[1:2])), paste("Jy2 =~", ones(pn("y")[3:4])),
    paste("Kx =~", ones(pn("x"))), paste("Jx1 =~", ones(pn("x")[1:2])), paste("Jx2 =~", ones(pn("x")[3:4])),
    "# variances and covariances of the effects",
    "Ky ~~ S_ky*Ky", "Jy1 ~~ S_jy*Jy1", "Jy2 ~~ S_jy*Jy2",
    "Kx ~~ S_kx*Kx", "Jx1 ~~ S_jx*Jx1", "Jx2 ~~ S_jx*Jx2",
    paste0("Ky ~~ ", cross_label("C_k"), "Kx"),
    paste0("Jy1 ~~ ", cross_label("C_j"), "Jx1"), paste0("Jy2 ~~ ", cross_label("C_j"), "Jx2"),
    sprintf("%s ~~ 0*%s", others[1, ], others[2, ]),
    "# residual variances and the covariance of the two equations' residuals",
    sprintf("%s ~~ S_ey*%s", pn("y"), pn("y")),
    sprintf("%s ~~ S_ex*%s", pn("x"), pn("x")),
    sprintf("%s ~~ %s%s", pn("y"), cross_label("C_e"), pn("x")))
}

normal_logl_rows <- function(X, mu, Sigma) {
  R <- chol(Sigma)
  Z <- forwardsolve(t(R), t(sweep(X, 2, mu)))
  -0.5 * (nrow(X) * (ncol(X) * log(2 * pi) + 2 * sum(log(diag(R)))) + sum(Z^2))
}

# log-likelihood of the endogenous columns given the exogenous ones, from the implied joint moments
conditional_logl <- function(fit) {
  imp <- lavInspect(fit, "implied")
  ny <- lavNames(fit, "ov.nox")
  nx <- lavNames(fit, "ov.x")
  S <- imp$cov
  B <- S[ny, nx] %*% solve(S[nx, nx])
  V <- S[ny, ny] - B %*% S[nx, ny]
  Y <- as.matrix(wide[ny])
  Xc <- sweep(as.matrix(wide[nx]), 2, imp$mean[nx])
  M <- sweep(Xc %*% t(B), 2, imp$mean[ny], "+")
  R <- chol(V)
  Z <- forwardsolve(t(R), t(Y - M))
  -0.5 * (nrow(Y) * (length(ny) * log(2 * pi) + 2 * sum(log(diag(R)))) + sum(Z^2))
}

exogenous_logl <- function(fit) {
  X <- as.matrix(wide[lavNames(fit, "ov.x")])
  n <- nrow(X)
  normal_logl_rows(X, colMeans(X), cov(X) * (n - 1) / n)
}

log <- character()
say <- function(...) {
  text <- capture.output(...)
  cat(text, sep = "\n")
  log <<- c(log, text)
}

specs <- list(over = list(c("z1", "z2"), TRUE), just = list("z1", TRUE),
              over_exog = list(c("z1", "z2"), FALSE), just_exog = list("z1", FALSE))
expected_npar <- c(over = 16, just = 15, over_exog = 13, just_exog = 12)
out <- list()
fits <- list()
for (nm in names(specs)) {
  syntax <- iv_syntax(specs[[nm]][[1]], specs[[nm]][[2]])
  writeLines(syntax, sprintf("tests/reference/iv_%s.lav", nm))
  model <- paste(syntax, collapse = "\n")
  fit <- fit_tight(model, data = wide, estimator = "ML", fixed.x = TRUE, information = "observed")
  stopifnot(npar(fit) == expected_npar[[nm]])
  lc <- conditional_logl(fit)
  lx <- exogenous_logl(fit)
  stopifnot(abs(lc - as.numeric(logLik(fit))) < 1e-8)
  fits[[nm]] <- fit
  out[[nm]] <- rbind(tidy_fit(nm, fit),
                     data.frame(model = nm, quantity = c("logl_conditional", "logl_exogenous"), name = "",
                                label = "", value = fmt(c(lc, lx))))
  say(cat(sprintf("== %s:\n", nm), syntax, sep = "\n"))
  say(cat(sprintf(paste0("sem(model, data = wide, estimator = \"ML\", fixed.x = TRUE): optimizer %s, converged %s, ",
                         "iterations %d,\n  max |constrained gradient| %.3g, logl %.17g, conditional logl %.17g,\n",
                         "  exogenous logl %.17g, npar %d, N %d, chisq %.10g, df %d\n"),
                  attr(fit, "optimizer"), lavInspect(fit, "converged"), lavInspect(fit, "iterations"),
                  max(abs(constrained_gradient(fit))), as.numeric(logLik(fit)), lc, lx, npar(fit),
                  lavInspect(fit, "ntotal"), lavInspect(fit, "test")$standard$stat,
                  lavInspect(fit, "test")$standard$df)))
  say(cat("  exogenous (ov.x):", lavNames(fit, "ov.x"), "\n"))
  pe <- by_label(fit)
  pe$se_expected <- parameterEstimates(refit_se(fit, "expected"))$se[
    match(pe$label, parameterEstimates(fit)$label)]
  say(print(pe, digits = 10))
}
write.csv(do.call(rbind, out), "tests/reference/iv_lavaan.csv", row.names = FALSE)
lr <- 2 * (as.numeric(logLik(fits$over)) - as.numeric(logLik(fits$over_exog)))
say(cat(sprintf("LR over vs over_exog (C_k = C_j = C_e = 0): %.10g on 3 df\n", lr)))
writeLines(c(session_lines(), "", log), "tests/reference/iv_lavaan_session.txt")
