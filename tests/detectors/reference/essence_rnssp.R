# Reference values for detectors/essence.py: ESSENCE's EWMA, adaptive multiple regression and
# regression/EWMA switch as CDC's Rnssp defines them (github.com/CDCgov/Rnssp: R/alert_ewma.R at
# 50b4761, R/alert_regression.R at ae5ba22, R/alert_switch.R at e997541).
#
# Rnssp is not installed here, so this script restates its loops in base R (same indexing,
# same lm.fit, same 1 - pt(), same rounding of the t quantiles) and writes:
#   inputs.csv      the test series (generated below with a fixed seed)
#   ewma.csv, regression.csv, switch.csv   per series and day
# into tests/assets/detectors/essence/ (or the directory given as the first argument).
#
#   Rscript tests/detectors/reference/essence_rnssp.R [out_dir]
#
# Parity check with Rnssp's own code: point RNSSP_R_DIR at a checkout's R/ directory holding
# alert_ewma.R, alert_regression.R and alert_switch.R (needs dplyr, tidyr, purrr, rlang, tibble,
# zoo, cli); the script then also runs alert_ewma(), alert_regression() and alert_switch() on
# every series and stops unless they agree with the restatement below.

args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1) args[[1]] else "tests/assets/detectors/essence"
invisible(Sys.setlocale("LC_TIME", "C")) # weekdays() must say Mon ... Sun, as Rnssp assumes

B <- 28; G <- 2; W1 <- 0.4; W2 <- 0.9

# ---- Rnssp ewma_loop (alert_ewma.R, 50b4761) ---------------------------------------------
ewma_ref <- function(y, B, g, w1, w2) {
  N <- length(y)
  min_baseline <- 7
  max_baseline <- B
  # (Rnssp rescales series with all values < 1 by the median positive value; counts never are.)
  expected <- z1 <- z2 <- test_stat <- p_val <- rep(NA_real_, N)
  z1[1] <- y[1]
  z2[1] <- y[1]
  for (i0 in 2:(min_baseline + g)) {
    z1[i0] <- w1 * y[i0] + (1 - w1) * z1[i0 - 1]
    z2[i0] <- w2 * y[i0] + (1 - w2) * z2[i0 - 1]
  }
  ndx <- 1:(min_baseline - 1)
  for (i in (min_baseline + g + 1):N) {
    if (ndx[length(ndx)] < max_baseline) ndx <- c(0, ndx)
    ndx <- ndx + 1
    L <- length(ndx)
    n_df <- L - 1
    expected[i] <- mean(y[ndx])
    s <- sd(y[ndx])
    corr1 <- sqrt((w1 / (2 - w1)) + (1 / L) - 2 * (1 - w1)^(g + 1) * ((1 - (1 - w1)^L) / L))
    corr2 <- sqrt((w2 / (2 - w2)) + (1 / L) - 2 * (1 - w2)^(g + 1) * ((1 - (1 - w2)^L) / L))
    ucl_alert <- round(qt(1 - 0.01, df = n_df), 5)
    ucl_warning <- round(qt(1 - 0.05, df = n_df), 5)
    min_sigma1 <- (w1 / ucl_warning) * (0.01 + 0.05 * (1 - w1)^2)
    min_sigma2 <- (w2 / ucl_warning) * (0.01 + 0.05 * (1 - w2)^2)
    constant1 <- (0.1289 - (0.2414 - 0.1826 * (1 - w1)^4) * log(10 * 0.05)) * (w1 / ucl_warning)
    constant2 <- (0.1289 - (0.2414 - 0.1826 * (1 - w2)^4) * log(10 * 0.05)) * (w2 / ucl_warning)
    sigma1 <- max(min_sigma1, s * corr1 + constant1)
    sigma2 <- max(min_sigma2, s * corr2 + constant2)
    z1[i] <- w1 * y[i] + (1 - w1) * z1[i - 1]
    z2[i] <- w2 * y[i] + (1 - w2) * z2[i - 1]
    t1 <- (z1[i] - expected[i]) / sigma1
    t2 <- (z2[i] - expected[i]) / sigma2
    if (abs(t1) > ucl_alert) z1[i] <- expected[i] + sign(t1) * ucl_alert * sigma1
    if (abs(t2) > ucl_alert) z2[i] <- expected[i] + sign(t2) * ucl_alert * sigma2
    p1 <- 1 - pt(t1, df = n_df)
    p2 <- 1 - pt(t2, df = n_df)
    if (p1 < p2) {
      p_val[i] <- p1; test_stat[i] <- t1
    } else {
      p_val[i] <- p2; test_stat[i] <- t2
    }
  }
  data.frame(expected = expected, test_statistic = test_stat, p_value = p_val)
}

# ---- Rnssp adaptive_regression (alert_regression.R, ae5ba22) -------------------------------
regression_ref <- function(y, dates, B, g) {
  N <- length(y)
  min_df <- 3
  min_baseline <- 11
  max_baseline <- B
  ucl_warning <- round(qt(1 - 0.05, df = 1:(B - min_df)), 5)
  min_sigma <- 0.01 / ucl_warning
  dow <- weekdays(dates, abbreviate = TRUE)
  dummies <- sapply(c("Mon", "Tue", "Wed", "Thu", "Fri", "Sat"), function(d) as.numeric(dow == d))
  expected <- test_stat <- p_val <- sigma <- r2_adj_out <- rep(NA_real_, N)
  ndx <- 1:(min_baseline - 1)
  for (i in (min_baseline + g + 1):N) {
    if (ndx[length(ndx)] < max_baseline) ndx <- c(0, ndx)
    ndx <- ndx + 1
    if (ndx[length(ndx)] < max_baseline) {
      ndx_time <- 1:ndx[length(ndx)]
      ndx_test <- ndx[length(ndx)] + g + 1
    } else {
      ndx_time <- 1:B
      ndx_test <- B + g + 1
    }
    n_df <- length(ndx) - 8
    L <- length(ndx)
    X <- cbind(ndx_time, dummies[ndx, , drop = FALSE])
    fit <- lm.fit(x = cbind(1, X), y = y[ndx])
    beta <- fit$coefficients
    res <- fit$residuals
    mse <- (1 / (n_df)) * sum(res^2)
    fv <- fit$fitted.values
    mss <- sum((fv - mean(fv))^2)
    rss <- sum(res^2)
    r2 <- mss / (rss + mss)
    r2_adj <- 1 - (1 - r2) * ((nrow(X) - 1) / fit$df.residual)
    r2_adj_out[i] <- if (is.nan(r2_adj)) 0 else r2_adj
    sigma[i] <- max(sqrt(mse) * sqrt(((L + 7) * (L - 4)) / (L * (L - 7))), min_sigma[n_df])
    dow_test <- as.numeric(format(dates[i], "%u"))
    expected[i] <- if (dow_test < 7) {
      max(0, beta[[1]] + ndx_test * beta[[2]] + beta[[dow_test + 2]])
    } else {
      max(0, beta[[1]] + ndx_test * beta[[2]])
    }
    test_stat[i] <- (y[i] - expected[i]) / sigma[i]
    p_val[i] <- 1 - pt(test_stat[i], df = n_df)
  }
  data.frame(expected = expected, test_statistic = test_stat, p_value = p_val,
             adj_r_squared = r2_adj_out)
}

level_of <- function(p) {
  ifelse(is.na(p), "grey", ifelse(p < 0.01, "red", ifelse(p < 0.05, "yellow", "blue")))
}

right_mean7 <- function(x) { # zoo::rollmean(x, k = 7, align = "right", fill = NA)
  out <- rep(NA_real_, length(x))
  if (length(x) >= 7) for (i in 7:length(x)) out[i] <- sum(x[(i - 6):i]) / 7
  out
}

# alert_regression's post-processing: a non-blue day below its 7-day mean turns blue; on
# Saturdays and Sundays only if it is also below the mean of the same weekday over 7 weeks.
regression_alert <- function(y, dates, p) {
  alert <- level_of(p)
  dow <- weekdays(dates, abbreviate = TRUE)
  ma7 <- right_mean7(y)
  remove <- alert != "blue" & y < ma7 # NA where ma7 is NA and alert is not blue
  wday_below <- rep(NA, length(y))
  for (d in c("Sat", "Sun")) {
    rows <- which(dow == d)
    wma7 <- right_mean7(y[rows])
    wday_below[rows] <- y[rows] < wma7
  }
  remove_wday <- !is.na(remove) & remove & !is.na(wday_below) & wday_below
  weekend <- dow %in% c("Sat", "Sun")
  final <- alert
  final[!is.na(remove) & remove & !weekend] <- "blue"
  final[!is.na(remove) & remove & weekend & remove_wday] <- "blue"
  list(alert = final, suppressed = final != alert)
}

# ---- test series ------------------------------------------------------------------------
set.seed(20240103)
n <- 120
dates <- seq.Date(as.Date("2024-01-03"), by = 1, length.out = n) # starts on a Wednesday
dow <- as.numeric(format(dates, "%u"))
weekly <- ifelse(dow >= 6, 8, 30) + 0.1 * seq_len(n)
series <- list(
  poisson_spikes = local({ y <- rpois(n, 8); y[61] <- y[61] + 15; y[96] <- y[96] + 25; y }),
  weekly_pattern = local({ y <- rpois(n, weekly); y[81] <- y[81] + 25; y }),
  plateau = local({ y <- rpois(n, weekly); y[71:77] <- y[71:77] + 30; y[78] <- y[78] + 15; y }),
  weekend_rise = local({ y <- rpois(n, weekly); y[c(88, 95, 102, 109)] <- y[c(88, 95, 102, 109)] + c(6, 10, 14, 12); y }),
  # Alerts right after a two-day burst in the guard band sit below their 7-day mean, which
  # Rnssp's rule withdraws (Thursday, day 93), except on a weekend day whose weekday mean is low
  # (Sunday, day 61); Saturday day 102 follows two old Saturday bursts, so it is withdrawn too.
  burst_weekday = local({
    y <- rpois(n, weekly); y[91:92] <- 200; y[93] <- y[93] + 20; y[59:60] <- 200; y[61] <- 40; y
  }),
  burst_weekend = local({
    y <- rpois(n, weekly); y[c(60, 67)] <- y[c(60, 67)] + 150; y[100:101] <- 200; y[102] <- 45; y
  }),
  sparse = rpois(n, 0.3),
  isolated_cases = local({ y <- rep(0, n); y[41] <- 1; y[71] <- 2; y[72] <- 1; y }),
  constant = rep(5, n),
  zeros = rep(0, n),
  large = rpois(n, 300 * ifelse(dow >= 6, 0.6, 1.1)),
  short = rpois(50, 12)
)

rows <- list(); ewma_rows <- list(); reg_rows <- list(); switch_rows <- list()
for (name in names(series)) {
  y <- as.numeric(series[[name]])
  d <- dates[seq_along(y)]
  e <- ewma_ref(y, B, G, W1, W2)
  r <- regression_ref(y, d, B, G)
  ra <- regression_alert(y, d, r$p_value)
  use_reg <- !is.na(r$adj_r_squared) & r$adj_r_squared >= 0.60
  rows[[name]] <- data.frame(series = name, date = format(d), count = y)
  ewma_rows[[name]] <- data.frame(series = name, date = format(d), e, alert = level_of(e$p_value))
  reg_rows[[name]] <- data.frame(series = name, date = format(d), r, alert = ra$alert,
                                 suppressed = ra$suppressed)
  switch_rows[[name]] <- data.frame(
    series = name, date = format(d),
    expected = ifelse(use_reg, r$expected, e$expected),
    test_statistic = ifelse(use_reg, r$test_statistic, e$test_statistic),
    p_value = ifelse(use_reg, r$p_value, e$p_value),
    alert = ifelse(use_reg, ra$alert, level_of(e$p_value)),
    detector = ifelse(use_reg, "regression", ifelse(is.na(e$p_value), "", "ewma"))
  )
}

write_table <- function(tables, file) {
  df <- do.call(rbind, tables)
  num <- vapply(df, is.double, logical(1))
  df[num] <- lapply(df[num], function(x) ifelse(is.na(x), "", sprintf("%.17g", x)))
  write.csv(df, file.path(out_dir, file), row.names = FALSE, quote = FALSE)
}
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
write_table(rows, "inputs.csv")
write_table(ewma_rows, "ewma.csv")
write_table(reg_rows, "regression.csv")
write_table(switch_rows, "switch.csv")

# ---- optional parity check against Rnssp's own functions --------------------------------
rnssp_dir <- Sys.getenv("RNSSP_R_DIR")
if (nzchar(rnssp_dir)) {
  suppressPackageStartupMessages({
    library(dplyr); library(tidyr); library(purrr); library(rlang)
  })
  for (f in c("alert_ewma.R", "alert_regression.R", "alert_switch.R")) {
    source(file.path(rnssp_dir, f))
  }
  worst <- 0
  same_p <- function(a, b) {
    worst <<- max(worst, suppressWarnings(max(abs(a - b), na.rm = TRUE)))
    all(is.na(a) == is.na(b))
  }
  for (name in names(series)) {
    df <- data.frame(date = dates[seq_along(series[[name]])], count = as.numeric(series[[name]]))
    ours_e <- ewma_rows[[name]]; ours_r <- reg_rows[[name]]; ours_s <- switch_rows[[name]]
    got_e <- as.data.frame(alert_ewma(df, B = B, g = G, w1 = W1, w2 = W2))
    got_r <- as.data.frame(alert_regression(df, B = B, g = G))
    got_s <- as.data.frame(alert_switch(df, B = B, g = G, w1 = W1, w2 = W2))
    stopifnot(
      same_p(got_e$p.value, ours_e$p_value), identical(got_e$alert, ours_e$alert),
      same_p(got_r$p.value, ours_r$p_value), identical(got_r$alert, ours_r$alert),
      same_p(got_s$p.value, ours_s$p_value), identical(got_s$alert, ours_s$alert)
    )
    # Rnssp's R² for a constant non-zero baseline is QR rounding noise; compare elsewhere.
    if (name != "constant") stopifnot(same_p(got_r$adjusted_r_squared, ours_r$adj_r_squared))
    det <- ifelse(is.na(got_s$detector), "",
                  ifelse(got_s$detector == "EWMA", "ewma", "regression"))
    stopifnot(identical(det, ours_s$detector))
  }
  cat(sprintf("Rnssp parity: %d series, identical levels, max |p difference| = %.3g\n",
              length(series), worst))
}
