# Fit the wide, constrained SEM written by make_lavaan_inputs.py with lavaan (FIML,
# covariates conditioned on) and store the log-likelihood and labelled estimates.
# Run from the repository root:  Rscript tests/reference/lavaan_wide.R
suppressPackageStartupMessages(library(lavaan))
out <- list()
for (name in c("article", "unbalanced")) {
  wide <- read.csv(file.path("tests/reference", sprintf("lavaan_%s_wide.csv", name)))
  model <- paste(readLines(file.path("tests/reference", sprintf("lavaan_%s.lav", name))), collapse = "\n")
  fit <- sem(model, data = wide, missing = "ml", fixed.x = TRUE,
             control = list(rel.tol = 1e-11, iter.max = 10000))
  pe <- parameterEstimates(fit)
  pe <- pe[pe$label != "", c("label", "est", "se")]
  pe <- pe[!duplicated(pe$label), ]
  chisq <- fitMeasures(fit, c("chisq", "df"))
  out[[name]] <- rbind(data.frame(design = name, label = "logLik", est = as.numeric(logLik(fit)), se = NA),
                       data.frame(design = name, label = c("chisq", "chisq_df"), est = as.numeric(chisq), se = NA),
                       data.frame(design = name, pe))
}
write.csv(do.call(rbind, out), "tests/reference/lavaan_wide.csv", row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan"))),
           "tests/reference/lavaan_wide_session.txt")
