# Fit the wide SEM with AR(1) residuals written by make_lavaan_ar1_inputs.py with lavaan
# (FIML, covariates conditioned on; rho defined from the lag-1 residual covariance, the other
# lags tied to it by nonlinear equality constraints, met to 1e-12 by the augmented Lagrangian
# rather than its default 1e-6) and store the log-likelihood, the chi-square against the
# saturated model and the labelled estimates.
# Run from the repository root:  Rscript tests/reference/lavaan_ar1.R
suppressPackageStartupMessages(library(lavaan))
wide <- read.csv("tests/reference/lavaan_ar1_wide.csv")
model <- paste(readLines("tests/reference/lavaan_ar1.lav"), collapse = "\n")
fit <- sem(model, data = wide, missing = "ml", fixed.x = TRUE,
           control = list(rel.tol = 1e-12, iter.max = 10000, control.outer = list(tol = 1e-12)))
pe <- parameterEstimates(fit)
pe <- pe[pe$label != "", c("label", "est", "se")]
pe <- pe[!duplicated(pe$label), ]
chisq <- fitMeasures(fit, c("chisq", "df"))
out <- rbind(data.frame(label = "logLik", est = as.numeric(logLik(fit)), se = NA),
             data.frame(label = c("chisq", "chisq_df"), est = as.numeric(chisq), se = NA),
             pe)
write.csv(out, "tests/reference/lavaan_ar1.csv", row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan"))),
           "tests/reference/lavaan_ar1_session.txt")
