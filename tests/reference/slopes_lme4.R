# Reference values for tests/test_slopes.py: random intercepts and slopes fitted by lme4 to
# tests/reference/slopes_data.csv (written by make_slopes_data.py), ML and REML, for
#   nested: y ~ x + (1 + x | k/j)
#   top:    y ~ x + (1 + x | k)
#   mixed:  y ~ x + (1 + x | k) + (1 | k:j)
# and, ML only, "singular": y ~ x + (1 + x | k) on slopes_singular_data.csv, a boundary (singular) fit.
# One row per model, method and parameter, named as sm_multisem names them (slopes_lme4.csv).
# Regenerate with:  Rscript tests/reference/slopes_lme4.R   (from the repository root)
suppressPackageStartupMessages(library(lme4))
out_dir <- "tests/reference"
data <- read.csv(file.path(out_dir, "slopes_data.csv"))
data$k <- factor(data$k)
data$j <- factor(data$j)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-4, rhoend = 2e-12, maxfun = 1e5),
                    check.conv.singular = "ignore")
formulas <- list(
  nested = y ~ x + (1 + x | k/j),
  top = y ~ x + (1 + x | k),
  mixed = y ~ x + (1 + x | k) + (1 | k:j)
)
level_of <- c("k" = "k", "j:k" = "k:j", "k:j" = "k:j")
rows <- list()
for (model in names(formulas)) {
  for (reml in c(FALSE, TRUE)) {
    fit <- lmer(formulas[[model]], data = data, REML = reml, control = ctrl)
    vc <- as.data.frame(VarCorr(fit))
    name <- ifelse(vc$grp == "Residual", "var(Residual)",
            ifelse(is.na(vc$var2),
                   ifelse(vc$var1 == "x", paste0("var(x|", level_of[vc$grp], ")"), paste0("var(", level_of[vc$grp], ")")),
                   paste0("cov(", level_of[vc$grp], ", x|", level_of[vc$grp], ")")))
    values <- c(fixef(fit), vc$vcov, as.numeric(logLik(fit)))
    names(values) <- c("Intercept", "x", name, "loglik")
    rows[[length(rows) + 1]] <- data.frame(model = model, reml = reml, name = names(values),
                                           value = sprintf("%.12g", values))
  }
}
singular <- read.csv(file.path(out_dir, "slopes_singular_data.csv"))
fit <- lmer(y ~ x + (1 + x | k), data = singular, REML = FALSE, control = ctrl)
vc <- as.data.frame(VarCorr(fit))
values <- c(fixef(fit), vc$vcov, as.numeric(logLik(fit)))
names(values) <- c("Intercept", "x", "var(k)", "var(x|k)", "cov(k, x|k)", "var(Residual)", "loglik")
stopifnot(all(vc$var1 == c("(Intercept)", "x", "(Intercept)", NA) | is.na(vc$var1)), isSingular(fit))
rows[[length(rows) + 1]] <- data.frame(model = "singular", reml = FALSE, name = names(values),
                                       value = sprintf("%.12g", values))
write.csv(do.call(rbind, rows), file.path(out_dir, "slopes_lme4.csv"), row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lme4", packageVersion("lme4"))),
           file.path(out_dir, "slopes_lme4_session.txt"))
