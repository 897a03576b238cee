# Reference values for residual structures within the units (k, j) of a two-level model
# with a random intercept of k only, on tests/reference/residual_data.csv (written by
# tests/reference/make_residual_data.py), fitted by maximum likelihood with nlme, on all
# rows ("balanced") and on the rows with keep == TRUE ("unbalanced", units of 1 to 4 rows):
#   exch  y_exch ~ x, random = ~ 1 | k, correlation = corCompSymm(form = ~ 1 | k/j)
#   by    y_by ~ x, random = list(k = ~ 1, j = pdDiag(~ 0 + type)),
#         weights = varIdent(form = ~ 1 | type)
#         (exchangeable by type: the random intercept of j with a variance per type is the
#         covariance of its residuals, which is positive on these data; the var(e) of a type
#         is its residual variance plus that covariance)
#   un    y_un ~ x, random = ~ 1 | k, correlation = corSymm(form = ~ time | k/j),
#         weights = varIdent(form = ~ 1 | time)
#
# Output: tests/reference/residual_nlme.csv (model, rows, term, estimate) with 17
# significant digits, in the parameterisation of sm_multisem: var(Residual) and
# cov(Residual) (exchangeable, by type with [a], [b]), var(Residual)[t] and
# cov(Residual)[s,t] (unstructured, by time), plus logLik and n_obs.
# Regenerate with:  Rscript tests/reference/residual_nlme.R   (from the repository root)
suppressPackageStartupMessages(library(nlme))
out_dir <- "tests/reference"
all_rows <- read.csv(file.path(out_dir, "residual_data.csv"))
all_rows$k <- factor(all_rows$k)
all_rows$j <- factor(all_rows$j)
all_rows$type <- factor(all_rows$type)
all_rows$keep <- as.logical(toupper(as.character(all_rows$keep)))  # pandas writes True, False
stopifnot(!anyNA(all_rows$keep))
all_rows <- all_rows[order(all_rows$k, all_rows$j, all_rows$time), ]  # corSymm reads the times in order

# Nelder-Mead with a tight relative tolerance, as in relax_nlme.R; for the nine variance
# parameters of corSymm + varIdent it stalls, and nlminb (restarted from its own solution
# until the log-likelihood stops moving) is used there.
ctrl <- lmeControl(maxIter = 1000, msMaxIter = 100000, niterEM = 100, tolerance = 1e-12,
                   msTol = 1e-15, reltol = 1e-15, opt = "optim", optimMethod = "Nelder-Mead")
ctrl_un <- lmeControl(maxIter = 1000, msMaxIter = 100000, niterEM = 100, tolerance = 1e-12,
                      msTol = 1e-15, rel.tol = 1e-12, opt = "nlminb")

terms <- function(fit, name) {
  s2 <- fit$sigma^2
  re <- as.matrix(fit$modelStruct$reStruct)
  out <- c(fixef(fit), "var(k)" = s2 * re$k[1, 1])
  if (name == "exch") {
    rho <- coef(fit$modelStruct$corStruct, unconstrained = FALSE)
    out <- c(out, "var(Residual)" = s2, "cov(Residual)" = s2 * unname(rho))
  } else if (name == "by") {
    delta <- coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
    cov_j <- s2 * diag(re$j)
    names(cov_j) <- sub("type", "", colnames(re$j))
    for (g in c("a", "b")) {
      out[sprintf("var(Residual)[%s]", g)] <- s2 * delta[[g]]^2 + cov_j[[g]]
      out[sprintf("cov(Residual)[%s]", g)] <- cov_j[[g]]
    }
  } else {
    delta <- coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
    sds <- sqrt(s2) * delta[as.character(1:4)]
    corr <- corMatrix(fit$modelStruct$corStruct)
    full <- corr[[which.max(sapply(corr, nrow))]]
    stopifnot(nrow(full) == 4)
    for (t in 1:4) out[sprintf("var(Residual)[%d]", t)] <- sds[t]^2
    for (t in 1:3) for (s in (t + 1):4)
      out[sprintf("cov(Residual)[%d,%d]", t, s)] <- full[t, s] * sds[t] * sds[s]
  }
  c(out, logLik = as.numeric(logLik(fit)), n_obs = fit$dims$N)
}

fit_model <- function(name, data) {
  fit <- function(start = NULL) withCallingHandlers({
    if (name == "exch") {
      lme(y_exch ~ x, random = if (is.null(start)) ~ 1 | k else start$reStruct,
          correlation = if (is.null(start)) corCompSymm(form = ~ 1 | k/j) else start$corStruct,
          data = data, method = "ML", control = ctrl)
    } else if (name == "by") {
      lme(y_by ~ x, random = if (is.null(start)) list(k = ~ 1, j = pdDiag(~ 0 + type)) else start$reStruct,
          weights = if (is.null(start)) varIdent(form = ~ 1 | type) else start$varStruct,
          data = data, method = "ML", control = ctrl)
    } else {
      lme(y_un ~ x, random = if (is.null(start)) ~ 1 | k else start$reStruct,
          correlation = if (is.null(start)) corSymm(form = ~ time | k/j) else start$corStruct,
          weights = if (is.null(start)) varIdent(form = ~ 1 | time) else start$varStruct,
          data = data, method = "ML", control = ctrl_un)
    }
  }, warning = function(w) stop("lme: ", conditionMessage(w)))
  first <- fit()
  for (restart in 1:20) {
    if (name != "un") break
    moved <- fit(first$modelStruct)
    if (abs(logLik(moved) - logLik(first)) < 1e-11) break
    first <- moved
  }
  # Convergence check: restarting from the solution must leave it where it is.
  again <- fit(first$modelStruct)
  a <- terms(first, name)
  b <- terms(again, name)
  cat(sprintf("%-5s %4d rows: restart moves logLik by %.1e, estimates by at most %.1e (relative)\n",
              name, nrow(data), b[["logLik"]] - a[["logLik"]], max(abs(b - a) / abs(a))))
  # corSymm's likelihood is flat to 1e-10 over estimates 1e-5 apart: nlme pins it down no closer
  stopifnot(abs(b[["logLik"]] - a[["logLik"]]) < 1e-9, max(abs(b - a) / abs(a)) < if (name == "un") 1e-4 else 1e-6)
  if (a[["logLik"]] < b[["logLik"]]) b else a
}

datasets <- list(balanced = all_rows, unbalanced = all_rows[all_rows$keep, ])
out <- NULL
for (rows in names(datasets)) for (name in c("exch", "by", "un")) {
  est <- fit_model(name, datasets[[rows]])
  out <- rbind(out, data.frame(model = name, rows = rows, term = names(est),
                               estimate = sprintf("%.17g", unname(est))))
}
write.csv(out, file.path(out_dir, "residual_nlme.csv"), row.names = FALSE, quote = 1:3)
writeLines(c(capture.output(sessionInfo())[1:3], paste("nlme", packageVersion("nlme"))),
           file.path(out_dir, "residual_nlme_session.txt"))
