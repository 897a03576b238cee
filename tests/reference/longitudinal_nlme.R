# Reference values for residual structures within subjects, fitted by nlme to
# tests/reference/longitudinal_data.csv (written by make_longitudinal_data.py), ML (reml FALSE)
# and REML (reml TRUE): y ~ x + arm (arm a factor with reference level "c": coefficients
# (Intercept), x, armt), random = ~ 1 | clinic, and within each subject (clinic/subject; the
# subject is only the residual grouping, it has no random effect):
#   car1         correlation = corCAR1(form = ~ time | clinic/subject)
#   ar1_ident    correlation = corAR1(form = ~ occ | clinic/subject),
#                weights = varIdent(form = ~ 1 | occ)
#   symm_ident   correlation = corSymm(form = ~ occ | clinic/subject),
#                weights = varIdent(form = ~ 1 | occ)
#   cs           correlation = corCompSymm(form = ~ 1 | clinic/subject)
#   indep_ident  weights = varIdent(form = ~ 1 | occ)
#   toep         correlation = corARMA(form = ~ occ | clinic/subject, p = 5, q = 0)
#   toep_ident   correlation = corARMA(form = ~ occ | clinic/subject, p = 5, q = 0),
#                weights = varIdent(form = ~ 1 | occ)
# toep is the homogeneous Toeplitz structure (one variance, a correlation per lag): on six
# occasions an AR(5) has exactly the positive-definite Toeplitz correlation matrices (its five
# partial autocorrelations are free in (-1, 1)), and corARMA takes the lag from the occasion
# numbers, so gaps are handled. toep_ident is the heterogeneous Toeplitz (a standard deviation
# per occasion, a correlation per lag), the structure of glmmTMB's toep() (see
# longitudinal_glmmtmb.R).
# Some subjects miss occasions, so corAR1 turns itself into corARMA(p = 1, q = 0) (its
# correlation is Phi1^|occ_s - occ_t|, the same AR(1) in occ); the script checks this.
#
# longitudinal_nlme.csv, long format model,reml,kind,name,value:
#   fixef       name = coefficient, value = estimate
#   loglik      value = logLik(fit)
#   nobs        value = number of rows
#   sigma       value = fit$sigma, the residual standard deviation; with varIdent it is the
#               standard deviation of the reference stratum of occ, which nlme takes as the
#               first occ value it meets in the data: occ 2 here (clinic 1, subject 1 has no
#               occ 1), whose ratio is 1 and is not listed under varpar
#   clinic_var  value = the variance of the clinic intercept
#   corpar      coef(fit$modelStruct$corStruct, unconstrained = FALSE), named as nlme names
#               them (car1: Phi; ar1_ident: Phi1; cs: Rho; toep, toep_ident: Phi1..Phi5, the
#               AR coefficients); corSymm leaves them unnamed, and they are named "s,t" here,
#               the correlation of occasions s < t, in nlme's order (1,2), (1,3), ..., (5,6)
#   varpar      coef(fit$modelStruct$varStruct, unconstrained = FALSE): the varIdent ratios
#               sd(occ) / sigma, named by occ as nlme names them
#   rcov        name = "s,t" (1-based occasions, all 36 entries), value = the implied residual
#               covariance of occasions s and t for one subject observed at all six occasions
#               (sigma^2 * ratio_s * ratio_t * corr(s, t)); for car1 the correlation is taken
#               at the times 1, 2, ..., 6 exactly: sigma^2 * Phi^|s - t|
# Each model is fitted with opt = "optim" (BFGS) and with opt = "nlminb" (rel.tol 1e-14; 1e-10
# only where both fail), the higher log-likelihood is kept and refitted from its own solution
# until the log-likelihood moves by less than 1e-9 (at most 5 times); a final restart must
# move it by less than 1e-8. Values are written with
# sprintf("%.12g").
# Regenerate with:  Rscript tests/reference/longitudinal_nlme.R   (from the repository root)
suppressPackageStartupMessages(library(nlme))
out_dir <- "tests/reference"
data <- read.csv(file.path(out_dir, "longitudinal_data.csv"))
data$clinic <- factor(data$clinic)
data$subject <- factor(data$subject)
data$arm <- factor(data$arm, levels = c("c", "t"))
data <- data[order(data$clinic, data$subject, data$occ), ]
stopifnot(is.integer(data$occ))

# nlminb at rel.tol = 1e-14 stops with "singular convergence" on some of these models, and
# optim (BFGS) steps outside corARMA's valid region on others: all three are tried.
controls <- list(
  optim = lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, msTol = 1e-14, tolerance = 1e-12,
                     opt = "optim"),
  nlminb = lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, msTol = 1e-14, tolerance = 1e-12,
                      rel.tol = 1e-14, opt = "nlminb"),
  nlminb_1e10 = lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, msTol = 1e-14, tolerance = 1e-12,
                           rel.tol = 1e-10, opt = "nlminb")
)
structures <- list(
  car1 = list(cor = function() corCAR1(form = ~ time | clinic/subject), var = NULL),
  ar1_ident = list(cor = function() corAR1(form = ~ occ | clinic/subject),
                   var = function() varIdent(form = ~ 1 | occ)),
  symm_ident = list(cor = function() corSymm(form = ~ occ | clinic/subject),
                    var = function() varIdent(form = ~ 1 | occ)),
  cs = list(cor = function() corCompSymm(form = ~ 1 | clinic/subject), var = NULL),
  indep_ident = list(cor = NULL, var = function() varIdent(form = ~ 1 | occ)),
  # corARMA(p = 5) fails from its default start (all zero); start from an AR(1)-like value.
  toep = list(cor = function() corARMA(c(0.5, 0, 0, 0, 0), form = ~ occ | clinic/subject, p = 5, q = 0),
              var = NULL),
  toep_ident = list(cor = function() corARMA(c(0.5, 0, 0, 0, 0), form = ~ occ | clinic/subject, p = 5, q = 0),
                    var = function() varIdent(form = ~ 1 | occ))
)

lme_fit <- function(reml, ctrl, random, correlation, weights) {
  args <- list(fixed = y ~ x + arm, data = data, random = random,
               method = if (reml) "REML" else "ML", control = ctrl)
  if (!is.null(correlation)) args$correlation <- correlation
  if (!is.null(weights)) args$weights <- weights
  # Any warning or error (a non-zero optimizer code among them) counts as a failure of that fit.
  tryCatch(withCallingHandlers(do.call(lme, args),
                               warning = function(w) stop("lme: ", conditionMessage(w))),
           error = function(e) NULL)
}

# Refit from the solution of fit, with the control `first` or, should that fail, the others.
restart <- function(fit, reml, first) {
  ms <- fit$modelStruct
  for (ctrl in c(first, setdiff(names(controls), first))) {
    again <- lme_fit(reml, controls[[ctrl]], ms$reStruct, ms$corStruct, ms$varStruct)
    if (!is.null(again)) return(again)
  }
  stop("no restart succeeded")
}

fit_model <- function(name, reml) {
  s <- structures[[name]]
  fits <- list()
  for (ctrl in names(controls)) {
    # nlminb_1e10 only when both tighter ones fail
    if (ctrl == "nlminb_1e10" && length(fits) > 0) break
    f <- lme_fit(reml, controls[[ctrl]], ~ 1 | clinic, if (is.null(s$cor)) NULL else s$cor(),
                 if (is.null(s$var)) NULL else s$var())
    if (!is.null(f)) fits[[ctrl]] <- f
  }
  ll <- sapply(fits, function(f) as.numeric(logLik(f)))
  stopifnot(any(!is.na(ll)))
  chosen <- names(ll)[which.max(ll)]
  best <- fits[[chosen]]
  for (i in 1:5) {
    again <- restart(best, reml, chosen)
    moved <- as.numeric(logLik(again)) - as.numeric(logLik(best))
    if (moved > 0) best <- again
    if (abs(moved) < 1e-9) break
  }
  again <- restart(best, reml, chosen)
  moved <- as.numeric(logLik(again)) - as.numeric(logLik(best))
  cat(sprintf("%-11s reml=%-5s logLik %s -> %s; %d restarts, the last moves logLik by %.1e\n",
              name, reml, paste(names(ll), sprintf("%.10f", ll), collapse = " "), chosen, i + 1, moved))
  stopifnot(abs(moved) < 1e-8)
  best
}

# The implied 6 x 6 residual covariance of one subject observed at occ = 1..6.
residual_cov <- function(name, fit) {
  ms <- fit$modelStruct
  ratio <- rep(1, 6)
  if (!is.null(ms$varStruct)) {
    ratio <- coef(ms$varStruct, unconstrained = FALSE, allCoef = TRUE)[as.character(1:6)]
    stopifnot(!anyNA(ratio))
  }
  cs <- ms$corStruct
  lag <- abs(outer(1:6, 1:6, "-"))
  if (is.null(cs)) {
    corr <- diag(6)
  } else if (name == "car1") {
    corr <- unname(coef(cs, unconstrained = FALSE))^lag  # at the times 1..6 exactly
  } else {
    # corMatrix of a subject observed at all six occasions ...
    times <- getCovariate(cs)
    mats <- corMatrix(cs)
    full <- names(times)[sapply(times, function(t) length(t) == 6)][1]
    stopifnot(all(diff(as.numeric(times[[full]])) == 1))  # corSymm counts its positions from 0
    corr <- unname(mats[[full]])
    # ... must match the structure written out from its parameters.
    par <- coef(cs, unconstrained = FALSE)
    expected <- switch(name,
      ar1_ident = unname(par)^lag,
      cs = ifelse(lag == 0, 1, unname(par)),
      symm_ident = { m <- diag(6); m[lower.tri(m)] <- par; m <- t(m); m[lower.tri(m)] <- t(m)[lower.tri(m)]; m },
      toep = , toep_ident = matrix(ARMAacf(ar = unname(par), lag.max = 5)[lag + 1], 6, 6))
    stopifnot(max(abs(corr - expected)) < 1e-10)
  }
  fit$sigma^2 * outer(ratio, ratio) * corr
}

fmt <- function(v) sprintf("%.12g", v)
rows <- list()
for (name in names(structures)) {
  for (reml in c(FALSE, TRUE)) {
    fit <- fit_model(name, reml)
    cs <- fit$modelStruct$corStruct
    if (name == "ar1_ident") stopifnot(inherits(cs, "corARMA"), attr(cs, "p") == 1, attr(cs, "q") == 0)
    fe <- fixef(fit)
    stopifnot(identical(names(fe), c("(Intercept)", "x", "armt")))
    r <- residual_cov(name, fit)
    values <- c(fe, as.numeric(logLik(fit)), fit$dims$N, fit$sigma,
                fit$sigma^2 * as.matrix(fit$modelStruct$reStruct)$clinic[1, 1], as.vector(r))
    kinds <- c(rep("fixef", 3), "loglik", "nobs", "sigma", "clinic_var", rep("rcov", 36))
    labels <- c(names(fe), "", "", "", "", paste(rep(1:6, 6), rep(1:6, each = 6), sep = ","))
    if (!is.null(cs)) {
      par <- coef(cs, unconstrained = FALSE)
      if (is.null(names(par))) {
        pairs <- which(upper.tri(diag(6)), arr.ind = TRUE)
        pairs <- pairs[order(pairs[, 1], pairs[, 2]), ]
        names(par) <- paste(pairs[, 1], pairs[, 2], sep = ",")
      }
      values <- c(values, par)
      kinds <- c(kinds, rep("corpar", length(par)))
      labels <- c(labels, names(par))
    }
    if (!is.null(fit$modelStruct$varStruct)) {
      par <- coef(fit$modelStruct$varStruct, unconstrained = FALSE)
      values <- c(values, par)
      kinds <- c(kinds, rep("varpar", length(par)))
      labels <- c(labels, names(par))
    }
    rows[[length(rows) + 1]] <- data.frame(model = name, reml = reml, kind = kinds, name = labels,
                                           value = fmt(unname(values)))
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(out_dir, "longitudinal_nlme.csv"), row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("nlme", packageVersion("nlme"))),
           file.path(out_dir, "longitudinal_nlme_session.txt"))
