# Reference values for tests/test_reference_lme4.py: lme4's Pastes data,
# strength ~ 1 + (1 | batch/cask), fitted by ML and REML: estimates (pastes_lme4.csv) and the
# predicted random effects with their conditional standard deviations (pastes_lme4_ranef.csv),
# also for an unbalanced subset (rows 1, 3, 7 and 8 dropped: casks A:a and A:b keep one sample
# each, batch B loses cask a), and predictions for new rows with allow.new.levels = TRUE
# (pastes_lme4_predict.csv: a seen cask, an unseen cask of a seen batch, an unseen batch).
# Regenerate with:  Rscript tests/reference/pastes_lme4.R   (from the repository root)
suppressPackageStartupMessages(library(lme4))
out_dir <- "tests/reference"
data(Pastes, package = "lme4")
write.csv(Pastes[, c("strength", "batch", "cask", "sample")],
          file.path(out_dir, "pastes.csv"), row.names = FALSE)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-4, rhoend = 2e-12, maxfun = 1e5))
rows <- list()
effects <- list()
predictions <- list()
new_rows <- data.frame(batch = c("A", "A", "Z"), cask = c("a", "z", "a"))
for (reml in c(FALSE, TRUE)) {
  fit <- lmer(strength ~ 1 + (1 | batch/cask), data = Pastes, REML = reml, control = ctrl)
  vc <- as.data.frame(VarCorr(fit))
  rows[[length(rows) + 1]] <- data.frame(
    reml = reml,
    intercept = unname(fixef(fit)[1]),
    se_intercept = sqrt(vcov(fit)[1, 1]),
    var_batch = vc$vcov[vc$grp == "batch"],
    var_cask = vc$vcov[vc$grp == "cask:batch"],
    var_residual = vc$vcov[vc$grp == "Residual"],
    loglik = as.numeric(logLik(fit)),
    n_obs = nobs(fit)
  )
  # condval and condsd: E[b | y] and sqrt(Var(b | y)) at the estimates (condVar = TRUE)
  unbalanced <- lmer(strength ~ 1 + (1 | batch/cask), data = Pastes[-c(1, 3, 7, 8), ], REML = reml,
                     control = ctrl)
  predictions[[length(predictions) + 1]] <- data.frame(
    reml = reml, new_rows,
    marginal = predict(fit, new_rows, re.form = NA),
    batch_level = predict(fit, new_rows, re.form = ~ (1 | batch), allow.new.levels = TRUE),
    cask_level = predict(fit, new_rows, allow.new.levels = TRUE)
  )
  for (subset in c("all", "unbalanced")) {
    effects[[length(effects) + 1]] <- data.frame(
      reml = reml, rows = subset,
      as.data.frame(ranef(if (subset == "all") fit else unbalanced, condVar = TRUE))
    )
  }
}
write.csv(do.call(rbind, rows), file.path(out_dir, "pastes_lme4.csv"), row.names = FALSE)
write.csv(do.call(rbind, effects)[, c("reml", "rows", "grpvar", "grp", "condval", "condsd")],
          file.path(out_dir, "pastes_lme4_ranef.csv"), row.names = FALSE)
write.csv(do.call(rbind, predictions), file.path(out_dir, "pastes_lme4_predict.csv"), row.names = FALSE)
writeLines(capture.output(sessionInfo())[1:3], file.path(out_dir, "pastes_lme4_session.txt"))
