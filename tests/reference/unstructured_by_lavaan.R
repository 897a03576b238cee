# lavaan on the wide form printed by
#   MultilevelSEM.from_formula("y_un ~ x + (1|k)", residual_data)
#       .relax_residuals(structure="unstructured", t="time", within="j", by="type").to_lavaan()
# (unstructured_by.lav), fitted to that model's wide data (unstructured_by_wide.csv, model.wide).
# Run from tests/reference: Rscript unstructured_by_lavaan.R > unstructured_by_lavaan_session.txt
library(lavaan)
wide <- read.csv("unstructured_by_wide.csv")
fit <- sem(paste(readLines("unstructured_by.lav"), collapse = "\n"), data = wide, fixed.x = TRUE,
           missing = "ml", optim.method = "BFGS", control = list(reltol = 1e-15))
est <- parameterEstimates(fit)
est <- est[est$label != "" & !duplicated(est$label), ]
cat(sprintf("converged %s\nnpar %d\nlogl %.17g\n", lavInspect(fit, "converged"),
            as.integer(fitMeasures(fit, "npar")), as.numeric(logLik(fit))))
cat(sprintf("est %s %.17g\n", est$label, est$est), sep = "")
