# lavaan on the multi-group wide form printed by
#   MultilevelSEM.from_formula("y ~ x + (1|k/j)", multigroup_long).relax_variance("k", by="region")
#       .relax_slope("x", by="region").to_lavaan()      (multigroup.lav)
# fitted to that model's wide_data() (multigroup_wide.csv), one group per region.
# multigroup_long.csv: simulate_article_data(n_clusters=300, seed=5) with region = north where k % 3 == 0.
# Run from tests/reference: Rscript multigroup_lavaan.R > multigroup_lavaan_session.txt
library(lavaan)
wide <- read.csv("multigroup_wide.csv")
fit <- sem(paste(readLines("multigroup.lav"), collapse = "\n"), data = wide, group = "region",
           group.label = c("north", "south"), fixed.x = TRUE, missing = "ml",
           optim.method = "BFGS", control = list(reltol = 1e-15))
est <- parameterEstimates(fit)
est <- est[est$label != "" & !duplicated(est$label), ]
cat(sprintf("converged %s\nnpar %d\nlogl %.17g\n", lavInspect(fit, "converged"),
            as.integer(fitMeasures(fit, "npar")), as.numeric(logLik(fit))))
cat(sprintf("est %s %.17g\n", est$label, est$est), sep = "")
