# Reference values for relaxations of the three-level model y ~ x + (1 | k/j) on
# tests/reference/relax_data.csv (written by tests/reference/make_relax_data.py),
# all fitted by maximum likelihood with nlme:
#   standard       y ~ x,          one j-level variance,          one residual variance
#   var_by_type    y ~ x,          one j-level variance per type, one residual variance
#   resid_by_role  y ~ x,          one j-level variance,          one residual variance per role
#   slope_by_type  y ~ 1 + x:type, one j-level variance,          one residual variance
#   all_three      y ~ 1 + x:type, one j-level variance per type, one residual variance per role
# var_by_type and slope_by_type are refitted with lme4 (models var_by_type_lme4 and
# slope_by_type_lme4, same term names) as an independent check.
#
# Output: tests/reference/relax_nlme.csv in long format (model, term, estimate).
# Terms: fixed effects as nlme names them; var(k); var(k:j) or var(k:j)[<type>];
# var(Residual) or var(Residual)[<role>] (the reference role "a" has variance sigma^2);
# logLik; n_obs.
# Regenerate with:  Rscript tests/reference/relax_nlme.R   (from the repository root)
suppressPackageStartupMessages({
  library(nlme)
  library(lme4)
})
out_dir <- "tests/reference"
data <- read.csv(file.path(out_dir, "relax_data.csv"))
data$k <- factor(data$k)
data$j <- factor(data$j)
data$type <- factor(data$type)  # levels chr, prv, pub
data$role <- factor(data$role)  # levels a, b, c

# nlme's default optimizer (nlminb on a finite-difference gradient) stops about 1e-8 short
# of the maximum of the log-likelihood on the models with several variance parameters,
# leaving relative errors of a few 1e-5 in the variances; Nelder-Mead with a tight
# relative tolerance gets to within about 1e-11 of it.
ctrl <- lmeControl(maxIter = 1000, msMaxIter = 100000, niterEM = 100, tolerance = 1e-12,
                   msTol = 1e-15, reltol = 1e-15, opt = "optim", optimMethod = "Nelder-Mead")
# Naming the initial ratios of roles b and c makes role a the reference stratum.
role_weights <- function() varIdent(value = c(b = 1, c = 1), form = ~ 1 | role)
by_type <- list(k = ~ 1, j = pdDiag(~ 0 + type))

rows_lme <- function(name, fit) {
  sigma2 <- fit$sigma^2
  re <- as.matrix(fit$modelStruct$reStruct)  # covariances relative to sigma^2
  var_k <- sigma2 * re$k[1, 1]
  var_j <- sigma2 * diag(re$j)
  names(var_j) <- if (length(var_j) == 1) "var(k:j)" else
    paste0("var(k:j)[", sub("^type", "", names(var_j)), "]")
  if (is.null(fit$modelStruct$varStruct)) {
    var_e <- c("var(Residual)" = sigma2)
  } else {
    ratio <- coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
    stopifnot(identical(names(ratio)[1], "a"), ratio[["a"]] == 1)
    ratio <- ratio[levels(data$role)]
    var_e <- sigma2 * ratio^2
    names(var_e) <- paste0("var(Residual)[", names(ratio), "]")
  }
  est <- c(fixef(fit), "var(k)" = var_k, var_j, var_e,
           logLik = as.numeric(logLik(fit)), n_obs = fit$dims$N)
  data.frame(model = name, term = names(est), estimate = unname(est))
}

fit_lme <- function(name, fixed, random, weights = NULL) {
  # Any warning (including an optimizer complaint) is treated as a failure; a
  # non-zero optim convergence code already stops lme.
  fit <- function(random, weights) withCallingHandlers(
    lme(fixed, random = random, weights = weights, data = data, method = "ML", control = ctrl),
    warning = function(w) stop("lme: ", conditionMessage(w))
  )
  first <- fit(random, weights)
  # Convergence check: restarting from the solution must leave it where it is.
  again <- fit(first$modelStruct$reStruct, first$modelStruct$varStruct)
  a <- rows_lme(name, first)$estimate
  b <- rows_lme(name, again)$estimate
  dll <- tail(b, 2)[1] - tail(a, 2)[1]
  rel <- max(abs(b - a) / abs(a))
  cat(sprintf("%-14s restart moves logLik by %.1e, estimates by at most %.1e (relative)\n",
              name, dll, rel))
  stopifnot(abs(dll) < 1e-9, rel < 1e-5)
  first
}

models <- list(
  standard = fit_lme("standard", y ~ x, ~ 1 | k/j),
  var_by_type = fit_lme("var_by_type", y ~ x, by_type),
  resid_by_role = fit_lme("resid_by_role", y ~ x, ~ 1 | k/j, role_weights()),
  slope_by_type = fit_lme("slope_by_type", y ~ 1 + x:type, ~ 1 | k/j),
  all_three = fit_lme("all_three", y ~ 1 + x:type, by_type, role_weights())
)

ctrl_lmer <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 2e-12, maxfun = 1e5),
                         check.conv.grad = .makeCC("stop", tol = 1e-6))
fit_lmer <- function(formula) {
  withCallingHandlers(
    lmer(formula, data = data, REML = FALSE, control = ctrl_lmer),
    warning = function(w) stop("lmer: ", conditionMessage(w))
  )
}

lmer_var_by_type <- fit_lmer(
  y ~ x + (1 | k) + (0 + dummy(type, "pub") | k:j) + (0 + dummy(type, "prv") | k:j) +
    (0 + dummy(type, "chr") | k:j))
lmer_slope_by_type <- fit_lmer(y ~ 1 + x:type + (1 | k/j))

rows_lmer <- function(name, fit) {
  vc <- as.data.frame(VarCorr(fit))
  is_j <- vc$grp != "k" & vc$grp != "Residual"
  var_j <- vc$vcov[is_j]
  names(var_j) <- if (length(var_j) == 1) "var(k:j)" else
    paste0("var(k:j)[", sub('^dummy\\(type, "(.*)"\\)$', "\\1", vc$var1[is_j]), "]")
  var_j <- var_j[order(names(var_j))]
  est <- c(fixef(fit), "var(k)" = vc$vcov[vc$grp == "k"], var_j,
           "var(Residual)" = vc$vcov[vc$grp == "Residual"],
           logLik = as.numeric(logLik(fit)), n_obs = nobs(fit))
  data.frame(model = name, term = names(est), estimate = unname(est))
}

rows <- c(
  Map(rows_lme, names(models), models),
  list(rows_lmer("var_by_type_lme4", lmer_var_by_type),
       rows_lmer("slope_by_type_lme4", lmer_slope_by_type))
)
out <- do.call(rbind, rows)
rownames(out) <- NULL
write.csv(out, file.path(out_dir, "relax_nlme.csv"), row.names = FALSE)

# nlme and lme4 must agree on the shared models.
for (name in c("var_by_type", "slope_by_type")) {
  a <- out[out$model == name, ]
  b <- out[out$model == paste0(name, "_lme4"), ]
  b <- b[match(a$term, b$term), ]
  stopifnot(!anyNA(b$estimate))
  rel <- max(abs(a$estimate - b$estimate) / abs(a$estimate))
  dll <- abs(a$estimate[a$term == "logLik"] - b$estimate[b$term == "logLik"])
  cat(sprintf("%-14s nlme vs lme4: estimates differ by at most %.1e (relative), logLik by %.1e\n",
              name, rel, dll))
  stopifnot(rel < 1e-5, dll < 1e-9)
}

writeLines(c(capture.output(sessionInfo())[1:3],
             paste("nlme", packageVersion("nlme")),
             paste("lme4", packageVersion("lme4"))),
           file.path(out_dir, "relax_nlme_session.txt"))
