# Fit the wide SEMs of residual blocks (banded and Toeplitz residuals) written by
# make_blocks_lavaan_inputs.py with lavaan (FIML, covariates conditioned on) and store the
# log-likelihood and the labelled estimates of each (blocks_lavaan.csv: model, label, est, se).
# lavaan's own EM for the saturated moments may warn that it stopped; the model's fit does not use them.
# Run from the repository root:  Rscript tests/reference/blocks_lavaan.R
suppressPackageStartupMessages(library(lavaan))
rows <- list()
for (name in c("banded", "toeplitz")) {
  wide <- read.csv(file.path("tests/reference", paste0("blocks_", name, "_wide.csv")))
  model <- paste(readLines(file.path("tests/reference", paste0("blocks_", name, ".lav"))), collapse = "\n")
  fit <- sem(model, data = wide, missing = "ml", fixed.x = TRUE, h1 = FALSE, baseline = FALSE, control = list(iter.max = 10000))
  pe <- parameterEstimates(fit)
  pe <- pe[pe$label != "", c("label", "est", "se")]
  pe <- pe[!duplicated(pe$label), ]
  rows[[name]] <- rbind(data.frame(model = name, label = "logLik", est = as.numeric(logLik(fit)), se = NA),
                        cbind(model = name, pe))
}
out <- do.call(rbind, rows)
out$est <- sprintf("%.12g", out$est)
out$se <- ifelse(is.na(out$se), "", sprintf("%.12g", out$se))
write.csv(out, "tests/reference/blocks_lavaan.csv", row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan"))),
           "tests/reference/blocks_lavaan_session.txt")
