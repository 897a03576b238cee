# lavaan on the syntax MultilevelSEM.from_formula("y ~ w + [x ~ z1 + z2] + (1|k/j)", iv_long).to_lavaan()
# prints (iv_exported.lav), fitted to the model's own wide data (iv_exported_wide.csv, model.wide).
# Run from tests/reference: Rscript iv_exported_lavaan.R > iv_exported_lavaan_session.txt
library(lavaan)
wide <- read.csv("iv_exported_wide.csv")
fit <- sem(paste(readLines("iv_exported.lav"), collapse = "\n"), data = wide, fixed.x = TRUE, missing = "ml",
           optim.method = "BFGS", control = list(reltol = 1e-15))
cat(sprintf("converged %s\nnpar %d\nlogl %.17g\n", lavInspect(fit, "converged"),
            as.integer(fitMeasures(fit, "npar")), as.numeric(logLik(fit))))
