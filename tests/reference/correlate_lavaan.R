# Correlated effects of sibling units and correlated residuals, freed by a label: lavaan ML fits
# (FIML, fixed.x = TRUE) of the wide models written by make_correlate_inputs.py, and lavaan's
# score tests of freeing their covariances from 0.
# Run from the repository root:  Rscript tests/reference/correlate_lavaan.R
#
# Writes correlate_lavaan.csv, tidy (see lavaan_tidy.R), one row per quantity:
#   model, quantity, name, label, value
# For every model <m> in effects_free, effects_equal, effects_hetero, residuals_free,
# residuals_equal:
# * model "<m>": the relaxed model (correlate_<m>.lav on correlate_<m>_wide.csv): logl, npar,
#   and per free parameter est, se_observed (information = "observed") and se_expected;
# * model "<m>_null": the same syntax with every covariance label (C_...) constrained to 0
#   ("C_j_north1_north2 == 0"), which is the mixed model; its logl, and lavTestScore of releasing
#   those "==" rows (expected information, lavTestScore's default): quantity "score_X2" and
#   "score_df" (all released together), "score_X2_uni" (name: the label; one constraint released,
#   the others kept) and "score_epc" (name: the label; the expected parameter change of that label
#   when its constraint alone is released, lavTestScore(release = r, epc = TRUE)).
# lavTestScore works on lavaan's scale (the gradient of logLik / N); its X2 is N score' J score,
# the statistic on the log-likelihood's scale (see lavaan_score.R).
source("tests/reference/lavaan_tidy.R")

names <- c("effects_free", "effects_equal", "effects_hetero", "residuals_free", "residuals_equal")
log <- character()
say <- function(...) {
  text <- capture.output(...)
  cat(text, sep = "\n")
  log <<- c(log, text)
}
out <- list()
for (name in names) {
  relaxed <- paste(readLines(sprintf("tests/reference/correlate_%s.lav", name)), collapse = "\n")
  wide <- read.csv(sprintf("tests/reference/correlate_%s_wide.csv", name))
  fit <- fit_tight(relaxed, data = wide, missing = "ml", fixed.x = TRUE, information = "observed")
  out[[name]] <- tidy_fit(name, fit)

  pt <- parTable(fit)
  covariance_labels <- unique(pt$label[pt$op == "~~" & pt$lhs != pt$rhs & pt$free > 0])
  stopifnot(length(covariance_labels) > 0, all(startsWith(covariance_labels, "C_")))
  null_syntax <- paste(c(relaxed, sprintf("%s == 0", covariance_labels)), collapse = "\n")
  null <- fit_tight(null_syntax, data = wide, missing = "ml", fixed.x = TRUE, information = "observed")
  eq <- parTable(null)
  eq <- eq[eq$op == "==", ]
  released <- which(eq$lhs %in% covariance_labels & eq$rhs == "0")
  stopifnot(length(released) == length(covariance_labels))
  test <- lavTestScore(null, release = released)
  uni_labels <- eq$lhs[released]
  epc <- vapply(released, function(r) {
    one <- lavTestScore(null, release = r, epc = TRUE)$epc
    one$epc[one$label == eq$lhs[r] & one$free > 0][1]
  }, numeric(1))
  rows <- data.frame(
    model = paste0(name, "_null"),
    quantity = c("logl", "score_X2", "score_df", rep("score_X2_uni", length(released)),
                 rep("score_epc", length(released))),
    name = c("", "", "", uni_labels, uni_labels), label = "",
    value = fmt(c(as.numeric(logLik(null)), test$test$X2, test$test$df, test$uni$X2, epc))
  )
  stopifnot(identical(paste(test$uni$lhs), paste(uni_labels)))
  out[[paste0(name, "_null")]] <- rows

  say(cat(sprintf("== %s: optimizer %s, converged %s, max |constrained gradient| %.3g, logl %.17g, npar %d\n",
                  name, attr(fit, "optimizer"), lavInspect(fit, "converged"), max(abs(constrained_gradient(fit))),
                  as.numeric(logLik(fit)), npar(fit))))
  say(print(by_label(fit), digits = 10))
  say(cat(sprintf("   covariances at 0: optimizer %s, logl %.17g; score test X2 = %.10g, df = %d\n",
                  attr(null, "optimizer"), as.numeric(logLik(null)), test$test$X2, test$test$df)))
  say(print(data.frame(label = uni_labels, X2 = test$uni$X2, epc = epc), digits = 10, row.names = FALSE))
}
write.csv(do.call(rbind, out), "tests/reference/correlate_lavaan.csv", row.names = FALSE)
writeLines(c(session_lines(), "", log), "tests/reference/correlate_lavaan_session.txt")
