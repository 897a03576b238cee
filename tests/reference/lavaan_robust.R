# Fit the wide, constrained SEMs written by make_lavaan_inputs.py (the same inputs as
# lavaan_wide.R) with lavaan's robust (Huber-White sandwich) standard errors and store the
# labelled estimates and robust SEs, with the bread taken as the observed and as the
# expected information.
# Run from the repository root:  Rscript tests/reference/lavaan_robust.R
#
# What lavaan 0.6.14 computes for estimator = "MLR", missing = "ml", fixed.x = TRUE
# (read from lavaan:::lav_model_vcov, lav_model_nvcov_robust_sandwich,
# lav_model_information_observed, lav_model_hessian, lav_model_information_firstorder,
# lav_model_h1_information_firstorder and lav_mvnorm_missing_information_firstorder;
# print any of them with getAnywhere() or lavaan:::name):
#
# * se = "robust.huber.white" (MLR; lav_model_nvcov_robust_sem is the MLM/"robust.sem"
#   path and is not used). NVarCov = E.inv %*% B0 %*% E.inv, VarCov = NVarCov / N with
#   N = lavsamplestats@ntotal = number of rows of the wide data (= top-level clusters).
# * Bread E: lavInspect(fit, "options")$information is c("observed", "observed") for MLR
#   with missing = "ml" (observed.information = c("hessian", "hessian"),
#   h1.information = "structured"). "hessian" means the Hessian of lavaan's objective
#   (minus the log-likelihood divided by N) at the estimates, by 4-point finite
#   differences (h = 1e-6) of the analytic gradient, symmetrised. With
#   information = "expected" the bread is instead Delta' A1 Delta with A1 the
#   missing-pattern-wise expected information of the joint normal of (y, x)
#   (lav_mvnorm_missing_information_expected), also per row. The x are then treated as
#   random with their moments fixed at the sample values of the wide x columns, so the
#   fixed-effect block is not X' V^{-1} X of the observed x unless no y is missing
#   (it agrees for the complete "article" design, not for "unbalanced"); the variance
#   block and the zero fixed/variance cross block are the usual expected ones.
#   The equality constraints given by the shared labels (c, bx, S_k, S_j, S_e) are not
#   reparametrised here (ceq.simple.only is FALSE): E is augmented with the constraint
#   Jacobian and inverted with MASS::ginv; its top-left block E.inv equals
#   L (L' E L)^{-1} L' for the basis L of the labelled parameters, so the result is the
#   sandwich in the 5 labelled parameters.
# * Meat B0: information.meat = "first.order", h1.information.meat = "structured":
#   B0 = Delta' (crossprod(SC) / N) Delta, where SC holds the casewise (per wide row)
#   scores of the model-implied joint normal at the estimates, taken on the observed part
#   of each row (FIML), with the columns belonging to the fixed x moments set to zero.
#   The rows are the wide rows, i.e. the top-level clusters; nothing is summed further.
# * Small-sample factor: none. The only nC / (nC - 1) in this path is applied when a
#   cluster = argument is given (lav_mvnorm_missing_information_firstorder); it is not
#   given here. Hence, in totals,
#       vcov = H^{-1} (sum_i s_i s_i') H^{-1},
#   H = minus the Hessian of the total log-likelihood (or the expected information),
#   s_i = score of wide row i, with no N / (N - 1). The script checks this identity
#   against lavScores() and lavInspect(fit, "inverted.information") for every fit.
suppressPackageStartupMessages(library(lavaan))
labels <- c("c", "bx", "S_k", "S_j", "S_e")
out <- list()
for (name in c("article", "unbalanced")) {
  wide <- read.csv(file.path("tests/reference", sprintf("lavaan_%s_wide.csv", name)))
  model <- paste(readLines(file.path("tests/reference", sprintf("lavaan_%s.lav", name))), collapse = "\n")
  for (information in c("observed", "expected")) {
    fit <- withCallingHandlers(
      sem(model, data = wide, missing = "ml", fixed.x = TRUE, estimator = "MLR",
          information = information, control = list(rel.tol = 1e-11, iter.max = 10000)),
      warning = function(w) {
        # the independence model of the wide data is not needed for the standard errors
        if (grepl("baseline model failed", conditionMessage(w))) invokeRestart("muffleWarning")
      })
    stopifnot(lavInspect(fit, "converged"))
    opt <- lavInspect(fit, "options")
    stopifnot(opt$se == "robust.huber.white", opt$information[1] == information,
              opt$information.meat == "first.order", opt$observed.information[1] == "hessian",
              length(fit@Data@cluster) == 0L)
    # the sandwich written out: per-row bread inverse, casewise scores, no extra factor
    n <- nrow(wide)
    stopifnot(lavInspect(fit, "ntotal") == n)
    e_inv <- lavInspect(fit, "inverted.information")
    scores <- lavScores(fit, remove.duplicated = FALSE)
    by_hand <- e_inv %*% (crossprod(scores) / n) %*% e_inv / n
    stopifnot(max(abs(by_hand - vcov(fit))) < 1e-10 * max(abs(vcov(fit))))
    pe <- parameterEstimates(fit)
    pe <- pe[pe$label != "", c("label", "est", "se")]
    pe <- pe[!duplicated(pe$label), ]
    stopifnot(identical(pe$label, labels))
    out[[paste(name, information)]] <- data.frame(design = name, information = information, pe)
  }
}
res <- do.call(rbind, out)
res$est <- sprintf("%.17g", res$est)
res$se <- sprintf("%.17g", res$se)
write.csv(res, "tests/reference/lavaan_robust.csv", row.names = FALSE, quote = 1:3)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan"))),
           "tests/reference/lavaan_robust_session.txt")
