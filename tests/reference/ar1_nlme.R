# Reference values for the three-level model y ~ x + (1 | k/j) with AR(1) residuals along
# the integer occasion `time` within each unit (k, j), on tests/reference/ar1_data.csv
# (written by tests/reference/make_ar1_data.py), fitted by maximum likelihood with nlme:
#   car1  correlation = corCAR1(form = ~ time | k/j)
#   ar1   correlation = corAR1(form = ~ time | k/j)
# Within a unit, the residual covariance of the rows at occasions t and s is
# var(Residual) * rho^|t - s|; the occasions of a unit have gaps, and the rows are not
# sorted by time.
#
# How nlme handles the gaps (nlme 3.1.162):
# * corCAR1 is the continuous-time AR(1): its correlation is Phi^|t_i - t_j| for the
#   covariate values t_i, t_j, so with an integer covariate it is rho^|t - s| exactly.
#   Its Phi is restricted to (0, 1).
# * corAR1 builds the correlation from the positions of the rows within a group only
#   when the covariate increases by exactly 1 from row to row in every group
#   (Initialize.corAR1). Otherwise (gaps, or rows not sorted by time, both the case here)
#   it turns itself into corARMA(p = 1, q = 0), whose correlation at lag |t_i - t_j| of the
#   integer covariate is Phi1^|t_i - t_j|: the same model as corCAR1 on these data, with
#   Phi1 restricted to (-1, 1) instead. The script checks that the fitted structure is a
#   corARMA, that the correlation matrices of both fits are rho^|t - s| and that the two
#   fits agree.
#
# Output: tests/reference/ar1_nlme.csv in long format (model, term, estimate), written
# with 17 significant digits. Terms: (Intercept); x; var(k); var(k:j); var(Residual)
# (sigma^2, the marginal residual variance); rho (the AR parameter, Phi or Phi1);
# logLik; n_obs.
# Regenerate with:  Rscript tests/reference/ar1_nlme.R   (from the repository root)
suppressPackageStartupMessages(library(nlme))
out_dir <- "tests/reference"
data <- read.csv(file.path(out_dir, "ar1_data.csv"))
data$k <- factor(data$k)
data$j <- factor(data$j)
stopifnot(is.integer(data$time))

# Nelder-Mead with a tight relative tolerance, as in relax_nlme.R; nlme's default
# optimizer stops short of the maximum by more than the refit check below allows.
ctrl <- lmeControl(maxIter = 1000, msMaxIter = 100000, niterEM = 100, tolerance = 1e-12,
                   msTol = 1e-15, reltol = 1e-15, opt = "optim", optimMethod = "Nelder-Mead")

ar_parameter <- function(fit) {
  phi <- coef(fit$modelStruct$corStruct, unconstrained = FALSE)
  stopifnot(length(phi) == 1)
  unname(phi)
}

rows_lme <- function(name, fit) {
  sigma2 <- fit$sigma^2
  re <- as.matrix(fit$modelStruct$reStruct)  # covariances relative to sigma^2
  est <- c(fixef(fit), "var(k)" = sigma2 * re$k[1, 1], "var(k:j)" = sigma2 * re$j[1, 1],
           "var(Residual)" = sigma2, rho = ar_parameter(fit),
           logLik = as.numeric(logLik(fit)), n_obs = fit$dims$N)
  data.frame(model = name, term = names(est), estimate = unname(est))
}

fit_lme <- function(name, correlation) {
  # Any warning (including an optimizer complaint) is treated as a failure; a
  # non-zero optim convergence code already stops lme.
  fit <- function(random, correlation) withCallingHandlers(
    lme(y ~ x, random = random, correlation = correlation, data = data, method = "ML",
        control = ctrl),
    warning = function(w) stop("lme: ", conditionMessage(w))
  )
  first <- fit(~ 1 | k/j, correlation)
  # Convergence check: restarting from the solution must leave it where it is.
  again <- fit(first$modelStruct$reStruct, first$modelStruct$corStruct)
  a <- rows_lme(name, first)$estimate
  b <- rows_lme(name, again)$estimate
  dll <- tail(b, 2)[1] - tail(a, 2)[1]
  rel <- max(abs(b - a) / abs(a))
  cat(sprintf("%-5s restart moves logLik by %.1e, estimates by at most %.1e (relative)\n",
              name, dll, rel))
  stopifnot(abs(dll) < 1e-9, rel < 1e-5)
  first
}

# The fitted correlation matrix of every unit must be rho^|t - s| at the unit's times.
check_correlation <- function(name, fit) {
  cs <- fit$modelStruct$corStruct
  times <- getCovariate(cs)
  mats <- corMatrix(cs)
  stopifnot(length(times) == length(mats), identical(names(times), names(mats)))
  rho <- ar_parameter(fit)
  err <- max(mapply(function(t, m) max(abs(m - rho^abs(outer(t, t, "-")))), times, mats))
  cat(sprintf("%-5s class %s: %d units, max |corMatrix - rho^|t - s|| = %.1e\n",
              name, class(cs)[1], length(mats), err))
  stopifnot(err < 1e-14)
}

models <- list(
  car1 = fit_lme("car1", corCAR1(form = ~ time | k/j)),
  ar1 = fit_lme("ar1", corAR1(form = ~ time | k/j))
)
stopifnot(inherits(models$car1$modelStruct$corStruct, "corCAR1"),
          inherits(models$ar1$modelStruct$corStruct, "corARMA"),
          attr(models$ar1$modelStruct$corStruct, "p") == 1,
          attr(models$ar1$modelStruct$corStruct, "q") == 0)
invisible(Map(check_correlation, names(models), models))

out <- do.call(rbind, Map(rows_lme, names(models), models))
rownames(out) <- NULL

# corCAR1 and corAR1 (as corARMA) must give the same fit on these data.
a <- out[out$model == "car1", ]
b <- out[out$model == "ar1", ]
stopifnot(identical(a$term, b$term))
rel <- max(abs(a$estimate - b$estimate) / abs(a$estimate))
dll <- abs(a$estimate[a$term == "logLik"] - b$estimate[b$term == "logLik"])
cat(sprintf("car1 vs ar1: estimates differ by at most %.1e (relative), logLik by %.1e\n",
            rel, dll))
stopifnot(rel < 1e-5, dll < 1e-9)

# For contrast (not written): an AR(1) over the positions of the rows sorted by time,
# ignoring the gaps, is a different model with a different maximum.
sorted <- data[order(data$k, data$j, data$time), ]
sorted$position <- ave(sorted$time, sorted$k, sorted$j, FUN = seq_along)
positions <- lme(y ~ x, random = ~ 1 | k/j, correlation = corAR1(form = ~ position | k/j),
                 data = sorted, method = "ML", control = ctrl)
stopifnot(inherits(positions$modelStruct$corStruct, "corAR1"))
cat(sprintf("AR(1) over positions, gaps ignored: logLik %.10f, rho %.6f\n",
            as.numeric(logLik(positions)), ar_parameter(positions)))

out$estimate <- sprintf("%.17g", out$estimate)
write.csv(out, file.path(out_dir, "ar1_nlme.csv"), row.names = FALSE, quote = 1:2)
writeLines(c(capture.output(sessionInfo())[1:3], paste("nlme", packageVersion("nlme"))),
           file.path(out_dir, "ar1_nlme_session.txt"))
