# Asymptotically distribution-free (ADF, GMM on first and second moments) fit of the article's
# wide, constrained SEM on non-normal data: adf.lav and adf_wide.csv, written by
# make_adf_inputs.py (500 counties; true c = 0.5, bx = 1, S_k = 1, S_j = 0.5, S_e = 1).
# lavaan: estimator = "WLS" (full weight matrix), fixed.x = FALSE, meanstructure = TRUE, so
# the moments fitted are the means and covariances of all 8 observed columns and the x
# columns' means, variances and covariances are free (saturated) parameters. The same model
# is fitted by ML (fixed.x = FALSE) for comparison.
# Run from the repository root:  Rscript tests/reference/adf_lavaan.R
#
# Writes
# * adf_lavaan.csv, tidy, one row per quantity: model, quantity, name, label, value
#   (see lavaan_tidy.R and joint_lavaan.R), models "wls" (quantity se: lavaan's standard
#   WLS SEs) and "ml" (se_observed, se_expected); for "wls" also chisq, df, fmin (lavaan's
#   objective at the optimum, fx), F (the quadratic form below), N.
# * adf_moments.csv: name, sample, implied: the 44 moments in lavaan's order (wls.obs and
#   wls.est), names "y1_1~1" for means and "y1_1~~y1_2" for covariances.
# * adf_gamma.csv: the 44 x 44 matrix lavInspect(fit, "gamma"), first column the row name,
#   columns in the same order.
#
# lavaan 0.6.14's conventions for estimator = "WLS" (verified numerically below, with
# stopifnot, and read from lavaan:::lav_model_objective and lavaan:::lav_model_test):
# * Moment vector s (wls.obs): the 8 means, then the covariance matrix's lower triangle
#   stacked column by column (vech: (1,1), (2,1), ..., (8,1), (2,2), (3,2), ...), in the
#   variable order y1_1, y1_2, y2_1, y2_2, x1_1, x1_2, x2_1, x2_2. The covariance has
#   divisor N - 1 (sample.cov.rescale = FALSE for WLS: not the N of ML).
# * Gamma (gamma.n.minus.one = FALSE, gamma.unbiased = FALSE): with d_i = (x_i - xbar,
#   vech((x_i - xbar)(x_i - xbar)') - vech(S_N)), S_N the covariance with divisor N,
#   Gamma = (1/N) sum_i d_i d_i'. Divisor N; means included (first 8 rows and columns:
#   there Gamma is S_N; the mean-covariance block holds third moments).
# * Weight matrix W (wls.v) = solve(Gamma) (the full inverse).
# * F = (s - sigma(theta))' W (s - sigma(theta)); lavaan minimises
#   fx = 0.5 * (N - 1) / N * F (the factor does not move the estimates), and
#   chisq = 2 N fx = (N - 1) * F_min, df = 44 - npar.
# * SEs (se = "standard", information = "expected"): vcov = (Delta' W Delta)^{-1} / (N - 1)
#   in the free parameters of the constrained model (shared labels collapsed), Delta the
#   Jacobian of sigma(theta) (lavInspect(fit, "delta")); divisor N - 1, not N (checked
#   below: the information is the Hessian of fx, which carries (N - 1) / N, divided by N).
source("tests/reference/lavaan_tidy.R")

model <- paste(readLines("tests/reference/adf.lav"), collapse = "\n")
wide <- read.csv("tests/reference/adf_wide.csv")

log <- character()
say <- function(...) {
  text <- capture.output(...)
  cat(text, sep = "\n")
  log <<- c(log, text)
}

wls <- fit_tight(model, data = wide, estimator = "WLS", fixed.x = FALSE, meanstructure = TRUE)
ml <- fit_tight(model, data = wide, estimator = "ML", fixed.x = FALSE, meanstructure = TRUE,
                information = "observed")

# --- lavaan's conventions, checked
ov <- lavNames(wls)
stopifnot(identical(ov, c("y1_1", "y1_2", "y2_1", "y2_2", "x1_1", "x1_2", "x2_1", "x2_2")))
X <- as.matrix(wide[ov])
N <- nrow(X)
S_N <- cov(X) * (N - 1) / N
low <- lower.tri(S_N, diag = TRUE)
pairs <- which(low, arr.ind = TRUE)            # column-wise vech order
moment_names <- c(paste0(ov, "~1"), paste0(ov[pairs[, 1]], "~~", ov[pairs[, 2]]))
s <- lavInspect(wls, "wls.obs")
sigma <- lavInspect(wls, "wls.est")
G <- lavInspect(wls, "gamma")
W <- lavInspect(wls, "wls.v")
stopifnot(max(abs(s - c(colMeans(X), cov(X)[low]))) < 1e-12)
Xc <- sweep(X, 2, colMeans(X))
D <- cbind(Xc, t(apply(Xc, 1, function(r) (r %o% r)[low])) - matrix(S_N[low], N, nrow(pairs), byrow = TRUE))
stopifnot(max(abs(crossprod(D) / N - G)) < 1e-12)
stopifnot(max(abs(W - solve(G))) < 1e-9 * max(abs(W)))
F <- as.numeric(t(s - sigma) %*% W %*% (s - sigma))
test <- lavInspect(wls, "test")$standard
stopifnot(abs(wls@optim$fx - 0.5 * (N - 1) / N * F) < 1e-12, abs(test$stat - (N - 1) * F) < 1e-9)
# SEs: (Delta' W Delta)^{-1} / (N - 1) in the labelled parameters
pt <- parTable(wls)
free <- pt[pt$free > 0, ]
key <- ifelse(free$label != "", free$label, paste0(free$lhs, free$op, free$rhs))
L <- outer(seq_len(nrow(free)), seq_along(unique(key)), function(i, u) as.numeric(key[i] == unique(key)[u]))
Delta <- lavInspect(wls, "delta")
V <- solve(t(L) %*% t(Delta) %*% W %*% Delta %*% L) / (N - 1)
se_check <- sqrt(diag(V))[match(key, unique(key))]
stopifnot(max(abs(se_check - parameterEstimates(wls, remove.nonfree = TRUE)$se)) < 1e-8)

# --- output
out <- rbind(
  tidy_fit("wls", wls, expected = FALSE),
  data.frame(model = "wls", quantity = c("chisq", "df", "fmin", "F", "N"), name = "", label = "",
             value = fmt(c(test$stat, test$df, wls@optim$fx, F, N))),
  tidy_fit("ml", ml),
  data.frame(model = "ml", quantity = c("chisq", "df"), name = "", label = "",
             value = fmt(c(lavInspect(ml, "test")$standard$stat, lavInspect(ml, "test")$standard$df)))
)
write.csv(out, "tests/reference/adf_lavaan.csv", row.names = FALSE)
write.csv(data.frame(name = moment_names, sample = fmt(s), implied = fmt(sigma)),
          "tests/reference/adf_moments.csv", row.names = FALSE)
gamma_out <- data.frame(name = moment_names, matrix(fmt(G), nrow(G)))
names(gamma_out) <- c("name", moment_names)
write.csv(gamma_out, "tests/reference/adf_gamma.csv", row.names = FALSE)

say(cat("model syntax (adf.lav):\n", model, "\n\n"))
for (nm in c("wls", "ml")) {
  fit <- list(wls = wls, ml = ml)[[nm]]
  opts <- lavInspect(fit, "options")
  say(cat(sprintf(paste0("== %s: estimator %s, fixed.x %s, meanstructure %s, optimizer %s, converged %s, ",
                         "iterations %d,\n   max |constrained gradient| %.3g, npar %d, N %d, chisq %.17g, df %d\n"),
                  nm, opts$estimator, opts$fixed.x, opts$meanstructure, attr(fit, "optimizer"),
                  lavInspect(fit, "converged"), lavInspect(fit, "iterations"), max(abs(constrained_gradient(fit))),
                  npar(fit), N, lavInspect(fit, "test")$standard$stat,
                  lavInspect(fit, "test")$standard$df)))
  say(print(by_label(fit), digits = 10))
  say(print(opts[c("se", "information", "test", "likelihood", "sample.cov.rescale", "gamma.n.minus.one",
                   "gamma.unbiased")]))
}
say(cat(sprintf("WLS: F = %.17g, fx = %.17g = 0.5 (N-1)/N F, chisq = %.17g = (N-1) F\n",
                F, wls@optim$fx, test$stat)))
say(cat("moment order:", moment_names, "\n"))
writeLines(c(session_lines(), "", log), "tests/reference/adf_lavaan_session.txt")
