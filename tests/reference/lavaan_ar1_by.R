# Fit the wide SEM with AR(1) residuals by label (a residual variance and a rho per type)
# written by make_lavaan_ar1_by_inputs.py with lavaan (FIML, covariates conditioned on; each
# label's rho defined from its lag-1 residual covariance, its other lags tied to it by nonlinear
# equality constraints, met to 1e-12 by the augmented Lagrangian rather than its default 1e-6)
# and store the log-likelihood and the labelled estimates. Some pairs of positions are never
# observed together (a unit of each type in few clusters), so lavaan's saturated model is not
# estimable here and no chi-square is stored. For the same reason the EM estimate of the
# unrestricted moments stops at its iteration limit, and logLik(), which with fixed.x = TRUE
# takes the covariates' part out through those moments, is off by 2e-4: the log-likelihood
# stored is the sum of the clusters' FIML log-likelihoods (loglik.casewise), which involves
# the model alone; logLik() is stored beside it as logLik_lavaan.
# Run from the repository root:  Rscript tests/reference/lavaan_ar1_by.R
suppressPackageStartupMessages(library(lavaan))
wide <- read.csv("tests/reference/lavaan_ar1_by_wide.csv")
model <- paste(readLines("tests/reference/lavaan_ar1_by.lav"), collapse = "\n")
fit <- sem(model, data = wide, missing = "ml", fixed.x = TRUE, h1 = FALSE, baseline = FALSE,
           control = list(rel.tol = 1e-12, iter.max = 10000, control.outer = list(tol = 1e-12)))
pe <- parameterEstimates(fit)
pe <- pe[pe$label != "", c("label", "est", "se")]
pe <- pe[!duplicated(pe$label), ]
out <- rbind(data.frame(label = c("logLik", "logLik_lavaan"),
                        est = c(sum(lavInspect(fit, "loglik.casewise")), as.numeric(logLik(fit))), se = NA),
             pe)
write.csv(out, "tests/reference/lavaan_ar1_by.csv", row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan"))),
           "tests/reference/lavaan_ar1_by_session.txt")
