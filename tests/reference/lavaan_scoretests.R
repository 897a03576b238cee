# Score tests of every constraint of the article's standard model, y ~ x + (1|k/j), with
# lavaan's lavTestScore, on the wide data lavaan_article_wide.csv and the syntax written by
# make_lavaan_scoretests_inputs.py. Run from the repository root:
#   Rscript tests/reference/lavaan_scoretests.R
#
# For each family (c, bx, S_j, S_e) the syntax gives the parameter a label per position,
# L_1, ..., L_P. The constrained model ties them in a star around a reference position r:
# L_q == L_r for every q != r. Releasing the one constraint L_p == L_r frees L_p alone,
# the other positions keeping a shared value: the univariate test of position p in
# score_tests(). Releasing all P - 1 constraints frees the family: its joint test. Two
# references (the first position, and the second for the first position) cover every p.
#
# lavTestScore (lavaan 0.6.14) computes X2 = N score' J score with score the gradient of
# logLik / N and J from the information of the constrained fit with the kept constraints
# (see lavaan_score.R); information = "expected" is its default, "observed" minus the
# Hessian. With epc = TRUE and one constraint released, the expected changes of L_p and
# L_r differ by the expected change of position p away from the shared value: the EPC of
# score_tests().
suppressPackageStartupMessages(library(lavaan))
wide <- read.csv("tests/reference/lavaan_article_wide.csv")
stopifnot(!anyNA(wide))
labels <- read.csv("tests/reference/lavaan_scoretests_labels.csv")
fmt <- function(v) sprintf("%.17g", v)
out <- list()
for (family in unique(labels$family)) {
  own <- labels[labels$family == family, ]
  syntax <- paste(readLines(sprintf("tests/reference/lavaan_scoretests_%s.lav", family)), collapse = "\n")
  for (r in 1:2) {
    others <- setdiff(seq_len(nrow(own)), r)
    star <- paste(own$lavaan_label[others], "==", own$lavaan_label[r], collapse = "\n")
    fit <- sem(paste(syntax, star, sep = "\n"), data = wide, missing = "ml", fixed.x = TRUE,
               control = list(rel.tol = 1e-11, iter.max = 10000))
    stopifnot(lavInspect(fit, "converged"), !lavInspect(fit, "options")$ceq.simple)
    pt <- parTable(fit)
    eq <- pt[pt$op == "==", ]
    # the row of each star constraint among the "==" rows (shared labels add rows of their own)
    row_of <- sapply(others, function(q) which(eq$lhs == own$lavaan_label[q] & eq$rhs == own$lavaan_label[r]))
    stopifnot(length(row_of) == length(others))
    if (r == 1) {
      out[[length(out) + 1]] <- data.frame(family = family, constraint = "", information = "",
                                           quantity = "logLik", value = fmt(logLik(fit)))
    }
    for (information in c("expected", "observed")) {
      if (r == 1) {
        joint <- lavTestScore(fit, release = row_of, information = information)
        stopifnot(joint$test$df == length(others))
        out[[length(out) + 1]] <- data.frame(family = family, constraint = "joint", information = information,
                                             quantity = c("X2", "df"), value = fmt(c(joint$test$X2, joint$test$df)))
      }
      for (i in seq_along(others)) {
        p <- others[i]
        if (r == 2 && p != 1) next
        one <- lavTestScore(fit, release = row_of[i], epc = TRUE, information = information)
        epc <- one$epc
        change <- epc$epc[epc$label == own$lavaan_label[p]][1] - epc$epc[epc$label == own$lavaan_label[r]][1]
        out[[length(out) + 1]] <- data.frame(family = family, constraint = own$constraint[p],
                                             information = information, quantity = c("X2", "epc"),
                                             value = fmt(c(one$test$X2, change)))
      }
    }
  }
}
write.csv(do.call(rbind, out), "tests/reference/lavaan_scoretests.csv", row.names = FALSE)
writeLines(c(capture.output(sessionInfo())[1:3], paste("lavaan", packageVersion("lavaan"))),
           "tests/reference/lavaan_scoretests_session.txt")
