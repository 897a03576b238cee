# Score (Lagrange multiplier) tests of relaxations of y ~ x + (1|k/j) with lavaan's
# lavTestScore, on the wide data and syntax written by make_lavaan_score_inputs.py.
# Run from the repository root:  Rscript tests/reference/lavaan_score.R
#
# For each relaxed model ("variance": S_j_pub, S_j_prv; "slope": bx_pub, bx_prv) the
# constrained model is the relaxed syntax plus the equality constraint between its two
# relaxed labels; it is the standard model, so its logLik is that of the standard fit.
# lavTestScore(fit, release = r) then tests releasing that one constraint.
#
# What lavaan 0.6.14 computes (print lavaan::lavTestScore):
#
# * Labels are not reparametrised (ceq.simple = FALSE): every labelled occurrence is a
#   free parameter and the shared labels add "==" rows (user = 2) to the parameter table.
#   Without release =, lavTestScore releases all of them (17 for "variance"), which is
#   not the test wanted here; release = r picks the row of the added constraint only.
# * score = lavTech(fit, "gradient.logl"), the gradient of logLik / N (N = rows of the
#   wide data = clusters), Information = lavTech(fit, "information.<information>"), per
#   row as well; X2 = N score' J score with J the top-left block of the generalised
#   inverse of [Information R1'; R1 0], R1 the constraints kept. The default is
#   information = "expected" (an argument of lavTestScore, not the fit's information
#   option, which is "observed" for missing = "ml"); "observed" is minus the Hessian of
#   the log-likelihood (observed.information = "hessian": finite differences of the
#   analytic gradient).
# * The univariate table has one row per released constraint (here one, equal to the
#   total test) and no EPC unless add = is used. epc = TRUE gives the one-step expected
#   change score J of every free parameter with all released constraints free; the two
#   relaxed labels move by different amounts, their difference being the expected change
#   of one relaxed parameter away from the other.
# * The expected information treats the wide x columns as random with moments fixed at
#   their sample values; its fixed-effect block equals X' V^{-1} X of the observed x only
#   when no y is missing. The wide data here are complete.
suppressPackageStartupMessages(library(lavaan))
designs <- list(variance = c("S_j_pub", "S_j_prv"), slope = c("bx_pub", "bx_prv"))
fmt <- function(v) sprintf("%.17g", v)
out <- list()
for (name in names(designs)) {
  relaxed_labels <- designs[[name]]
  wide <- read.csv(file.path("tests/reference", sprintf("lavaan_score_%s_wide.csv", name)))
  stopifnot(!anyNA(wide))
  relaxed <- paste(readLines(file.path("tests/reference", sprintf("lavaan_score_%s.lav", name))), collapse = "\n")
  constraint <- sprintf("%s == %s", relaxed_labels[1], relaxed_labels[2])
  constrained <- paste(relaxed, constraint, sep = "\n")
  fits <- lapply(list(constrained = constrained, relaxed = relaxed), function(model) {
    fit <- sem(model, data = wide, missing = "ml", fixed.x = TRUE,
               control = list(rel.tol = 1e-11, iter.max = 10000))
    stopifnot(lavInspect(fit, "converged"))
    fit
  })
  fit <- fits$constrained
  opt <- lavInspect(fit, "options")
  stopifnot(!opt$ceq.simple, opt$se == "standard", opt$observed.information[1] == "hessian",
            lavInspect(fit, "ntotal") == nrow(wide))

  # the row of the added constraint among the "==" rows (= rows of con.jac)
  pt <- parTable(fit)
  eq <- pt[pt$op == "==", ]
  r <- which(eq$lhs == relaxed_labels[1] & eq$rhs == relaxed_labels[2])
  stopifnot(length(r) == 1L, nrow(fit@Model@con.jac) == nrow(eq))
  free_of <- function(label) pt$free[pt$label == label & pt$free > 0]
  row <- fit@Model@con.jac[r, ]  # first copy of each label, +1 and -1
  stopifnot(row[free_of(relaxed_labels[1])[1]] == 1, row[free_of(relaxed_labels[2])[1]] == -1,
            sum(row != 0) == 2L)

  pe <- parameterEstimates(fit)
  pe <- pe[pe$label != "", ]
  pe <- pe[!duplicated(pe$label), ]
  rows <- list(
    data.frame(information = "", quantity = "logLik", label = "constrained", value = fmt(logLik(fit))),
    data.frame(information = "", quantity = "logLik", label = "relaxed", value = fmt(logLik(fits$relaxed))),
    data.frame(information = "", quantity = "est", label = pe$label, value = fmt(pe$est))
  )
  for (information in c("expected", "observed")) {
    test <- lavTestScore(fit, release = r, epc = TRUE, information = information)
    stopifnot(test$test$df == 1L, nrow(test$uni) == 1L)
    epc <- test$epc
    epc <- epc[epc$label != "" & epc$free > 0, ]
    # copies of one label move together (their constraints are kept)
    spread <- tapply(epc$epc, epc$label, function(v) diff(range(v)))
    stopifnot(all(spread < 1e-8 * max(abs(epc$epc))))
    epc <- epc[!duplicated(epc$label), ]
    diff_epc <- epc$epc[epc$label == relaxed_labels[1]] - epc$epc[epc$label == relaxed_labels[2]]
    rows <- c(rows, list(
      data.frame(information = information, quantity = "X2_total", label = "", value = fmt(test$test$X2)),
      data.frame(information = information, quantity = "df_total", label = "", value = fmt(test$test$df)),
      data.frame(information = information, quantity = "X2_uni",
                 label = paste(test$uni$lhs, test$uni$op, test$uni$rhs), value = fmt(test$uni$X2)),
      data.frame(information = information, quantity = "epc", label = epc$label, value = fmt(epc$epc)),
      data.frame(information = information, quantity = "epc_difference",
                 label = paste(relaxed_labels, collapse = " - "), value = fmt(diff_epc))
    ))
  }
  out[[name]] <- data.frame(design = name, do.call(rbind, rows))
}
write.csv(do.call(rbind, out), "tests/reference/lavaan_score.csv", row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan")),
             paste("lavTestScore default information:", formals(lavTestScore)$information),
             paste("fit information option:", paste(lavInspect(fits$relaxed, "options")$information, collapse = " "))),
           "tests/reference/lavaan_score_session.txt")
