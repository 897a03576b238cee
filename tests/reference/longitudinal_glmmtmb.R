# Reference values for Toeplitz residuals within subjects, fitted by glmmTMB to
# tests/reference/longitudinal_data.csv (written by make_longitudinal_data.py), ML (reml FALSE)
# and REML (reml TRUE; glmmTMB supports it for this Gaussian model):
#   toep  y ~ x + arm + (1 | clinic) + toep(0 + factor(occ) | clinic:subject),
#         dispformula = ~ 0
# (arm a factor with reference level "c": coefficients (Intercept), x, armt). glmmTMB's toep is
# the heterogeneous Toeplitz structure: a standard deviation per occasion and a correlation per
# lag, cov(s, t) = sd_s sd_t rho_|s - t|. glmmTMB has no homogeneous Toeplitz structure (one
# variance, a covariance per lag); nlme's corARMA(p = 5) is one, and it is fitted in
# longitudinal_nlme.R (model toep), together with the heterogeneous one (model toep_ident,
# corARMA(p = 5) + varIdent), which this script refits as a check on the glmmTMB fit.
#
# The toep term has to carry the whole residual. With dispformula = ~ 0, glmmTMB does not
# estimate the Gaussian residual variance but fixes its log at
# glmmTMBControl()$zerodisp_val = log(sqrt(.Machine$double.eps)), so the residual variance is
# sqrt(.Machine$double.eps) = 1.49011611938953e-08 (sigma(fit) = 1.220703125e-04); it is
# written out (kind resid_var) and included in rcov. (With the residual variance estimated
# instead, toep + residual is a different, larger model, not the Toeplitz one.)
#
# glmmTMB's own log-likelihood is not accurate on this model: with so small a residual
# variance its Laplace evaluation loses digits, and logLik(fit) comes out about 2.4e-6 (ML) and
# 3.0e-6 (REML) below the log-likelihood of the same model computed directly (dense covariance
# matrix per clinic) at the same estimates, and moves by up to 1e-6 between two fits whose
# estimates agree to 1e-8. Its gradient is accurate, and so are the estimates. The script
# therefore also writes the directly computed value (kind loglik_direct), and checks the fit
# against nlme's heterogeneous Toeplitz fit (corARMA(p = 5) + varIdent): the direct
# log-likelihood at glmmTMB's estimates without the residual variance equals nlme's logLik to
# 1e-8, and the estimates agree to 1e-4 (relative; about 1e-6 in practice). The residual
# variance itself raises the log-likelihood by about 1e-7.
#
# longitudinal_glmmtmb.csv, long format model,reml,kind,name,value:
#   fixef          name = coefficient, value = estimate (fixef(fit)$cond)
#   loglik         value = logLik(fit), glmmTMB's value (see above)
#   loglik_direct  value = the log-likelihood (reml FALSE) or REML criterion (reml TRUE, with
#                  beta integrated out over a flat prior, as glmmTMB and nlme do) computed
#                  directly at glmmTMB's estimates, residual variance included
#   nobs           value = number of rows
#   clinic_var     value = the variance of the clinic intercept
#   resid_var      value = the fixed residual variance, sigma(fit)^2
#   toep_sd        name = occ (1..6), value = the standard deviation of the toep term
#   toep_cor       name = lag (1..5), value = the correlation of the toep term at that lag
#   rcov           name = "s,t" (1-based occasions, all 36 entries), value = the implied
#                  residual covariance of one subject observed at all six occasions: VarCorr of
#                  the toep term, plus resid_var on the diagonal
#
# Convergence: nlminb (rel.tol 1e-14) alone stops with "false convergence" on this model, with
# a gradient of about 1e-2; the optimizer used here runs nlminb and then Newton steps on TMB's
# gradient (Hessian by numDeriv::jacobian of the gradient) until the largest gradient
# component is below 1e-6. A refit started from the solution must move the parameters by less
# than 1e-6 and the direct log-likelihood by less than 1e-8 (glmmTMB's own by less than 1e-5).
# Values are written with sprintf("%.12g").
# Regenerate with:  Rscript tests/reference/longitudinal_glmmtmb.R   (from the repository root)
suppressPackageStartupMessages({
  library(glmmTMB)
  library(nlme)
})
out_dir <- "tests/reference"
data <- read.csv(file.path(out_dir, "longitudinal_data.csv"))
data$clinic <- factor(data$clinic)
data$subject <- factor(data$subject)
data$arm <- factor(data$arm, levels = c("c", "t"))
data <- data[order(data$clinic, data$subject, data$occ), ]

newton_polished <- function(par, fn, gr, control = list(), ...) {
  fit <- suppressWarnings(nlminb(par, fn, gr, control = control))
  p <- fit$par
  for (i in 1:20) {
    g <- as.numeric(gr(p))
    if (max(abs(g)) < 1e-6) break
    h <- numDeriv::jacobian(function(q) as.numeric(gr(q)), p)
    p <- p - solve(0.5 * (h + t(h)), g)
  }
  g <- as.numeric(gr(p))
  stopifnot(max(abs(g)) < 1e-6)
  # Make the final point the one glmmTMB reads its estimates from (last.par.best).
  env <- environment(fn)
  env$value.best <- Inf
  objective <- fn(p)
  list(par = p, objective = objective, convergence = 0, iterations = fit$iterations,
       evaluations = fit$evaluations, message = sprintf("nlminb, then %d Newton steps", i - 1),
       max_gradient = max(abs(g)))
}
ctrl <- glmmTMBControl(optimizer = newton_polished,
                       optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))
form <- y ~ x + arm + (1 | clinic) + toep(0 + factor(occ) | clinic:subject)

fit_toep <- function(reml, start = NULL) {
  glmmTMB(form, data = data, dispformula = ~ 0, REML = reml, control = ctrl, start = start)
}

nlme_toep_ident <- function(reml) {
  lme(y ~ x + arm, random = ~ 1 | clinic, data = data, method = if (reml) "REML" else "ML",
      correlation = corARMA(c(0.5, 0, 0, 0, 0), form = ~ occ | clinic/subject, p = 5, q = 0),
      weights = varIdent(form = ~ 1 | occ),
      control = lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, msTol = 1e-14,
                           tolerance = 1e-12, rel.tol = 1e-14, opt = "nlminb"))
}

# The Gaussian log-likelihood computed directly (dense covariance matrix per clinic) at given
# estimates: ML at beta, or, for REML, the REML criterion with beta integrated out over a flat
# prior (glmmTMB's and nlme's convention): the ML value at the GLS estimate
# + p/2 log(2 pi) - 1/2 log det(X' V^-1 X).
X <- model.matrix(~ x + arm, data)
direct_loglik <- function(beta, clinic_var, rcov, reml) {
  parts <- lapply(split(seq_len(nrow(data)), data$clinic), function(i) {
    same <- outer(data$subject[i], data$subject[i], "==")
    v <- rcov[data$occ[i], data$occ[i]] * same + clinic_var
    ch <- chol(v)
    list(logdet = 2 * sum(log(diag(ch))),
         wx = backsolve(ch, X[i, , drop = FALSE], transpose = TRUE),
         wy = backsolve(ch, data$y[i], transpose = TRUE))
  })
  wx <- do.call(rbind, lapply(parts, `[[`, "wx"))
  wy <- unlist(lapply(parts, `[[`, "wy"))
  xtx <- crossprod(wx)
  if (reml) beta <- solve(xtx, crossprod(wx, wy))
  ll <- -0.5 * (sum(sapply(parts, `[[`, "logdet")) + sum((wy - wx %*% beta)^2) + nrow(data) * log(2 * pi))
  if (reml) ll <- ll + 0.5 * ncol(X) * log(2 * pi) - 0.5 * as.numeric(determinant(xtx)$modulus)
  ll
}

estimates <- function(fit) {
  vc <- VarCorr(fit)$cond
  toep <- vc[["clinic:subject"]]
  stopifnot(attr(toep, "blockCode") == 8,  # toep
            identical(colnames(toep), paste0("factor(occ)", 1:6)))
  resid_var <- sigma(fit)^2
  list(fe = fixef(fit)$cond, clinic_var = vc$clinic[1, 1], resid_var = resid_var, toep = toep,
       rcov = unname(as.matrix(toep)) + diag(resid_var, 6))
}

fmt <- function(v) sprintf("%.12g", v)
rows <- list()
for (reml in c(FALSE, TRUE)) {
  fit <- fit_toep(reml)
  est <- estimates(fit)
  ll_direct <- direct_loglik(est$fe, est$clinic_var, est$rcov, reml)
  # Restart from the solution: the estimates, and so the directly computed log-likelihood,
  # must stay where they are.
  start <- fit$obj$env$parList(fit$fit$par, fit$fit$parfull)
  again <- fit_toep(reml, start = start[c("beta", "theta")])
  est_again <- estimates(again)
  moved <- direct_loglik(est_again$fe, est_again$clinic_var, est_again$rcov, reml) - ll_direct
  moved_tmb <- as.numeric(logLik(again)) - as.numeric(logLik(fit))
  dpar <- max(abs(again$fit$par - fit$fit$par))
  cat(sprintf("toep reml=%-5s logLik %.10f, computed directly %.10f (%s, max |gradient| %.1e)\n",
              reml, as.numeric(logLik(fit)), ll_direct, fit$fit$message, fit$fit$max_gradient))
  cat(sprintf("     restart moves the parameters by %.1e, logLik by %.1e (glmmTMB's) and %.1e (direct)\n",
              dpar, moved_tmb, moved))
  stopifnot(abs(moved) < 1e-8, dpar < 1e-6, abs(moved_tmb) < 1e-5)

  toep <- est$toep
  resid_var <- est$resid_var
  stopifnot(abs(resid_var - sqrt(.Machine$double.eps)) < 1e-20)
  rcov <- est$rcov
  sds <- unname(attr(toep, "stddev"))
  corr <- unname(attr(toep, "correlation"))
  lag_cor <- corr[1, 2:6]
  stopifnot(max(abs(corr - matrix(c(1, lag_cor)[abs(outer(1:6, 1:6, "-")) + 1], 6, 6))) < 1e-12)
  clinic_var <- est$clinic_var
  fe <- est$fe
  stopifnot(identical(names(fe), c("(Intercept)", "x", "armt")))
  values <- c(fe, as.numeric(logLik(fit)), ll_direct, nobs(fit), clinic_var, resid_var, sds,
              lag_cor, as.vector(rcov))
  kinds <- c(rep("fixef", 3), "loglik", "loglik_direct", "nobs", "clinic_var", "resid_var",
             rep("toep_sd", 6), rep("toep_cor", 5), rep("rcov", 36))
  labels <- c(names(fe), "", "", "", "", "", 1:6, 1:5, paste(rep(1:6, 6), rep(1:6, each = 6), sep = ","))
  rows[[length(rows) + 1]] <- data.frame(model = "toep", reml = reml, kind = kinds, name = labels,
                                         value = fmt(unname(values)))

  # Check against nlme's heterogeneous Toeplitz (AR(5) correlation, a variance per occasion),
  # which has no residual variance added.
  n <- nlme_toep_ident(reml)
  ratio <- coef(n$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)[as.character(1:6)]
  acf <- ARMAacf(ar = unname(coef(n$modelStruct$corStruct, unconstrained = FALSE)), lag.max = 5)
  n_rcov <- n$sigma^2 * outer(ratio, ratio) * matrix(acf[abs(outer(1:6, 1:6, "-")) + 1], 6, 6)
  # At glmmTMB's estimates without the residual variance, the direct log-likelihood is nlme's
  # model at (nearly) its optimum.
  dll <- direct_loglik(fe, clinic_var, unname(as.matrix(toep)), reml) - as.numeric(logLik(n))
  rel <- max(abs(c(fe - fixef(n), clinic_var - n$sigma^2 * as.matrix(n$modelStruct$reStruct)$clinic[1, 1],
                   rcov - n_rcov)) /
             abs(c(fe, clinic_var, n_rcov)))
  cat(sprintf("     nlme corARMA(p = 5) + varIdent: logLik %.10f; the direct one at glmmTMB's estimates without resid_var differs by %.1e; estimates differ by at most %.1e (relative)\n",
              as.numeric(logLik(n)), dll, rel))
  stopifnot(abs(dll) < 1e-8, rel < 1e-4)
}
out <- do.call(rbind, rows)
write.csv(out, file.path(out_dir, "longitudinal_glmmtmb.csv"), row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("glmmTMB", packageVersion("glmmTMB")),
             paste("TMB", packageVersion("TMB"))),
           file.path(out_dir, "longitudinal_glmmtmb_session.txt"))
