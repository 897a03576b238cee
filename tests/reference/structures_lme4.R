# Reference values for random-effect structures fitted by lme4 to
# tests/reference/structures_data.csv (written by make_structures_data.py), ML (reml FALSE) and
# REML (reml TRUE). Fixed part y ~ x + w + type in every model, type a factor with reference
# level "pub", so the coefficients are, in this order: (Intercept), x, w, typeprv, typechr.
#   us3:      (1 + x + w | k) + (1 | k:j)
#   diag:     (1 + x || k) + (1 | k:j)
#   split:    (1 | k) + (0 + x | k) + (1 | k:j)          (the same model as diag)
#   bytype:   (0 + type | k) + (1 | k:j)
#   slopes2:  (1 + x | k/j)
#   xonly:    (0 + x | k) + (1 | k:j)
#   siblings: (1 | k) + (0 + dummy(type, "pub") | kt) + (0 + dummy(type, "prv") | kt)
#             + (0 + dummy(type, "chr") | kt) + (0 + dummy(type, "pub") | kj)
#             + (0 + dummy(type, "prv") | kj) + (0 + dummy(type, "chr") | kj)
#             with kt = interaction(k, type) and kj = interaction(k, j) built explicitly as
#             factors (j is numbered within k, so j alone would not tell the units apart):
#             an effect per (k, type) with a variance per type, independent across types,
#             and an effect per unit k:j with a variance per type.
#
# structures_lme4.csv, long format model,reml,kind,grp,var1,var2,value (empty = NA):
#   fixef    var1 = coefficient name, value = estimate
#   se       var1 = coefficient name, value = sqrt(diag(vcov(fit)))
#   vcov     one row per row of as.data.frame(VarCorr(fit)): grp, var1, var2 as lme4 gives
#            them (var2 empty for a variance), value = the variance or covariance (vcov, not
#            the correlation); grp "Residual" with var1 empty is the residual variance
#   loglik   value = logLik(fit)
#   nobs     value = nobs(fit)
#   ngroups  grp = grouping factor, value = its number of levels (ngrps(fit))
# For us3, ML only:
#   structures_lme4_ranef.csv    grp,level,var1,value,condsd: ranef(fit, condVar = TRUE), value
#                                the conditional mode, condsd the square root of the diagonal
#                                of its postVar array
#   structures_lme4_predict.csv  row,k,j,fitted,population: one row per data row in the
#                                data's order, fitted = fitted(fit) (all random effects),
#                                population = predict(fit, re.form = NA)
# Each fit is run with nloptwrap and with bobyqa at tight tolerances, the higher
# log-likelihood is kept, and a refit started from its theta must move the log-likelihood by
# less than 1e-8. Values are written with sprintf("%.12g").
# Regenerate with:  Rscript tests/reference/structures_lme4.R   (from the repository root)
suppressPackageStartupMessages(library(lme4))
out_dir <- "tests/reference"
data <- read.csv(file.path(out_dir, "structures_data.csv"))
data$k <- factor(data$k)
data$j <- factor(data$j)
data$type <- factor(data$type, levels = c("pub", "prv", "chr"))
data$role <- factor(data$role, levels = c("a", "b"))
data$kt <- interaction(data$k, data$type, drop = TRUE)
data$kj <- interaction(data$k, data$j, drop = TRUE)
stopifnot(nlevels(data$kj) == nrow(unique(data[, c("k", "j")])),
          nlevels(data$kt) == nrow(unique(data[, c("k", "type")])),
          all(tapply(data$type, data$kj, function(t) length(unique(t))) == 1))

controls <- list(
  nloptwrap = lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12,
                                         ftol_rel = 1e-14, maxeval = 1e5),
                          check.conv.singular = "ignore"),
  bobyqa = lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-4, rhoend = 2e-12, maxfun = 1e5),
                       check.conv.singular = "ignore")
)
formulas <- list(
  us3 = y ~ x + w + type + (1 + x + w | k) + (1 | k:j),
  diag = y ~ x + w + type + (1 + x || k) + (1 | k:j),
  split = y ~ x + w + type + (1 | k) + (0 + x | k) + (1 | k:j),
  bytype = y ~ x + w + type + (0 + type | k) + (1 | k:j),
  slopes2 = y ~ x + w + type + (1 + x | k/j),
  xonly = y ~ x + w + type + (0 + x | k) + (1 | k:j),
  siblings = y ~ x + w + type + (1 | k) +
    (0 + dummy(type, "pub") | kt) + (0 + dummy(type, "prv") | kt) + (0 + dummy(type, "chr") | kt) +
    (0 + dummy(type, "pub") | kj) + (0 + dummy(type, "prv") | kj) + (0 + dummy(type, "chr") | kj)
)

fit_best <- function(model, reml) {
  formula <- formulas[[model]]
  fits <- lapply(controls, function(ctrl) lmer(formula, data = data, REML = reml, control = ctrl))
  ll <- sapply(fits, function(f) as.numeric(logLik(f)))
  best <- fits[[which.max(ll)]]
  # Restart from the optimum: the log-likelihood must stay where it is.
  again <- lmer(formula, data = data, REML = reml, control = controls[[which.max(ll)]],
                start = list(theta = getME(best, "theta")))
  moved <- as.numeric(logLik(again)) - max(ll)
  dtheta <- max(abs(getME(fits[[1]], "theta") - getME(fits[[2]], "theta")))
  cat(sprintf("%-8s reml=%-5s logLik nloptwrap %.10f bobyqa %.10f (theta differ by %.1e) -> %s; restart moves logLik by %.1e\n",
              model, reml, ll[1], ll[2], dtheta, names(ll)[which.max(ll)], moved))
  stopifnot(abs(moved) < 1e-8)
  if (moved > 0) again else best
}

fmt <- function(v) sprintf("%.12g", v)
rows <- list()
add <- function(model, reml, kind, grp, var1, var2, value) {
  rows[[length(rows) + 1]] <<- data.frame(model = model, reml = reml, kind = kind, grp = grp,
                                          var1 = var1, var2 = var2, value = fmt(value))
}
for (model in names(formulas)) {
  for (reml in c(FALSE, TRUE)) {
    fit <- fit_best(model, reml)
    fe <- fixef(fit)
    stopifnot(identical(names(fe), c("(Intercept)", "x", "w", "typeprv", "typechr")))
    vc <- as.data.frame(VarCorr(fit))
    ng <- ngrps(fit)
    add(model, reml, "fixef", NA, names(fe), NA, fe)
    add(model, reml, "se", NA, names(fe), NA, sqrt(diag(as.matrix(vcov(fit)))))
    add(model, reml, "vcov", vc$grp, vc$var1, vc$var2, vc$vcov)
    add(model, reml, "loglik", NA, NA, NA, as.numeric(logLik(fit)))
    add(model, reml, "nobs", NA, NA, NA, nobs(fit))
    add(model, reml, "ngroups", names(ng), NA, NA, unname(ng))
    if (model == "us3" && !reml) us3_ml <- fit
  }
}
out <- do.call(rbind, rows)
# diag and split are the same model.
a <- out[out$model == "diag", ]
b <- out[out$model == "split", ]
stopifnot(identical(a$kind, b$kind))
dv <- max(abs(as.numeric(a$value) - as.numeric(b$value)))
cat(sprintf("diag vs split: values differ by at most %.1e\n", dv))
stopifnot(dv < 1e-5)
write.csv(out, file.path(out_dir, "structures_lme4.csv"), row.names = FALSE, na = "")

re <- as.data.frame(ranef(us3_ml, condVar = TRUE))
write.csv(data.frame(grp = re$grpvar, level = re$grp, var1 = re$term, value = fmt(re$condval),
                     condsd = fmt(re$condsd)),
          file.path(out_dir, "structures_lme4_ranef.csv"), row.names = FALSE)
write.csv(data.frame(row = seq_len(nrow(data)), k = data$k, j = data$j,
                     fitted = fmt(unname(fitted(us3_ml))),
                     population = fmt(unname(predict(us3_ml, re.form = NA)))),
          file.path(out_dir, "structures_lme4_predict.csv"), row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lme4", packageVersion("lme4"))),
           file.path(out_dir, "structures_lme4_session.txt"))
