# Reference values for detectors/ears.py and detectors/cusum.py from R `surveillance`.
#
# Regenerate (from the repository root; needs R with the surveillance package):
#     Rscript tests/detectors/reference/ears_cusum.R
# Generated with R 4.2.2 and surveillance 1.20.3 (the versions actually used are written to
# tests/assets/detectors/{ears,cusum}/versions.txt on every run).
#
# Runs surveillance::earsC (C1, C2, C3; defaults and one non-default setting each) and
# surveillance::cusum (several k/h/m/trans settings) on
#   - sim:       20 simulated daily series x 730 days (seeded negative binomial with yearly
#                seasonality and a weekly pattern; sparse series, outbreaks, a step change,
#                a near-constant series, a high-count series, one series with missing days),
#   - ha:        ha.sts, 12 Berlin districts, 290 weeks of hepatitis A (sparse),
#   - measlesDE: measlesDE, 16 German states, 156 weeks of measles.
# Output per folder (ears/, cusum/):
#   settings.csv                      one row per (dataset, setting) with our parameter names
#   <dataset>.counts.csv              date + one column per series
#   <dataset>.<setting>.upperbound.csv  R's upperbound, same layout, NA where R has none
#   <dataset>.<setting>.alarm.csv       R's alarm as 1/0, NA where R has none
#   cusum/<dataset>.glm_fit.csv         per series: did R's glm for m = "glm" converge
# Numbers are written with 10 significant digits (parity is checked at 1e-6 relative).

suppressPackageStartupMessages(library(surveillance))

out_root <- file.path("tests", "assets", "detectors")
stopifnot(dir.exists(out_root))
ears_dir <- file.path(out_root, "ears")
cusum_dir <- file.path(out_root, "cusum")
dir.create(ears_dir, showWarnings = FALSE)
dir.create(cusum_dir, showWarnings = FALSE)

# ---------------------------------------------------------------- datasets
iso_monday <- function(year, week) {
  jan4 <- as.Date(sprintf("%d-01-04", year))
  jan4 - (as.integer(format(jan4, "%u")) - 1) + 7 * (week - 1)
}

simulate_daily <- function() {
  set.seed(20240611)
  n <- 730
  dates <- seq(as.Date("2019-01-01"), by = "day", length.out = n)
  tt <- seq_len(n)
  dow <- as.integer(format(dates, "%u"))
  weekly <- c(1.15, 1.10, 1.00, 1.00, 0.95, 0.70, 0.60)[dow]
  season <- function(amp, peak) exp(amp * cos(2 * pi * (tt - peak) / 365.25))
  nb <- function(mu, size) rnbinom(n, mu = mu, size = size)
  outbreaks <- function(base, k = 3) {
    extra <- numeric(n)
    for (i in seq_len(k)) {
      start <- sample(30:(n - 20), 1)
      len <- sample(5:14, 1)
      shape <- dlnorm(seq_len(len), meanlog = log(len / 3), sdlog = 0.6)
      size <- max(4, base * len * runif(1, 0.6, 1.5))
      extra[start:(start + len - 1)] <- extra[start:(start + len - 1)] +
        rpois(len, size * shape / sum(shape))
    }
    extra
  }
  y <- cbind(
    nb_mu2 = nb(2 * season(0.3, 20) * weekly, 5),
    nb_mu5 = nb(5 * season(0.4, 30) * weekly, 10),
    nb_mu10 = nb(10 * season(0.5, 15) * weekly, 8),
    nb_mu25 = nb(25 * season(0.3, 200) * weekly, 12),
    nb_mu80 = nb(80 * season(0.2, 40) * weekly, 20),
    nb_mu300 = nb(300 * season(0.25, 10) * weekly, 30),
    sparse_005 = nb(0.05 * weekly, 1),
    sparse_015 = nb(0.15 * season(0.5, 20) * weekly, 1),
    sparse_04 = nb(0.4 * weekly, 1),
    sparse_08 = nb(0.8 * season(0.3, 60), 2),
    outbreak_3 = nb(3 * season(0.3, 20) * weekly, 6) + outbreaks(3),
    outbreak_8 = nb(8 * weekly, 8) + outbreaks(8),
    outbreak_20 = nb(20 * season(0.4, 30) * weekly, 10) + outbreaks(20),
    outbreak_03 = nb(0.3 * weekly, 1) + outbreaks(1.5),
    outbreak_1 = nb(1 * season(0.3, 20), 2) + outbreaks(2),
    late_start = c(rep(0, 120), rnbinom(n - 120, mu = 2 * weekly[121:n], size = 4)),
    step_up = nb(ifelse(tt > 500, 8, 4) * weekly, 10),
    near_constant = 5 + rbinom(n, 1, 0.05),
    with_missing = nb(6 * weekly, 6),
    high_1000 = nb(1000 * season(0.1, 30) * weekly, 200)
  )
  y <- y + 0  # numeric, not integer
  missing <- c(sample(20:(n - 10), 15), 300:303)
  y[missing, "with_missing"] <- NA
  list(y = y, dates = dates, sts = sts(observed = y, start = c(2019, 1), frequency = 365))
}

from_package <- function(name) {
  e <- new.env()
  data(list = name, package = "surveillance", envir = e)
  s <- get(name, envir = e)
  y <- observed(s) + 0
  dates <- iso_monday(s@start[1], s@start[2]) + 7 * (seq_len(nrow(y)) - 1)
  list(y = y, dates = dates, sts = s)
}

datasets <- list(sim = simulate_daily(), ha = from_package("ha.sts"),
                 measlesDE = from_package("measlesDE"))
# first monitored index for CUSUM (1-based R range start): 1 year of daily data, 2 years
# (ha) or 1 year (measlesDE) of weekly data before it estimate m
cusum_start <- c(sim = 366, ha = 105, measlesDE = 53)

# ---------------------------------------------------------------- writing
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.10g", x))
write_matrix <- function(m, names, path) {
  cells <- matrix(m, nrow = nrow(m))
  colnames(cells) <- names
  write.csv(cells, path, row.names = FALSE, quote = FALSE)
}
write_counts <- function(d, path) {
  cells <- cbind(date = format(d$dates), matrix(fmt(d$y), nrow = nrow(d$y)))
  colnames(cells) <- c("date", colnames(d$y))
  write.csv(cells, path, row.names = FALSE, quote = FALSE)
}
full_rows <- function(res_matrix, rows, n) {
  out <- matrix(NA_real_, nrow = n, ncol = ncol(res_matrix))
  out[rows, ] <- res_matrix
  out
}
write_result <- function(res, rows, d, dir, dataset, setting) {
  n <- nrow(d$y)
  ub <- full_rows(upperbound(res), rows, n)
  al <- full_rows(alarms(res) + 0, rows, n)
  write_matrix(fmt(ub), colnames(d$y), file.path(dir, sprintf("%s.%s.upperbound.csv", dataset, setting)))
  write_matrix(ifelse(is.na(al), "NA", sprintf("%d", as.integer(al))), colnames(d$y),
               file.path(dir, sprintf("%s.%s.alarm.csv", dataset, setting)))
}

# ---------------------------------------------------------------- EARS
ears_settings <- list(
  # R's defaults: only the method is given (alpha then defaults to 0.001 for C1/C2 and
  # 0.025 for C3, baseline 7, minSigma 0)
  c1 = list(method = "C1"),
  c2 = list(method = "C2"),
  c3 = list(method = "C3"),
  c1_b14_a05 = list(method = "C1", baseline = 14, alpha = 0.05),
  c2_ms05 = list(method = "C2", minSigma = 0.5, alpha = 0.01),
  c3_b10_ms02 = list(method = "C3", baseline = 10, alpha = 0.001, minSigma = 0.2)
)
ears_rows <- list()
for (dataset in names(datasets)) {
  d <- datasets[[dataset]]
  write_counts(d, file.path(ears_dir, sprintf("%s.counts.csv", dataset)))
  for (setting in names(ears_settings)) {
    control <- ears_settings[[setting]]
    res <- earsC(d$sts, control = control)
    ctl <- res@control
    write_result(res, ctl$range, d, ears_dir, dataset, setting)
    ears_rows[[length(ears_rows) + 1]] <- data.frame(
      dataset = dataset, setting = setting, method = tolower(ctl$method),
      baseline = ctl$baseline, alpha = ctl$alpha, min_sigma = ctl$minSigma)
  }
}
write.csv(do.call(rbind, ears_rows), file.path(ears_dir, "settings.csv"), row.names = FALSE,
          quote = FALSE)

# ---------------------------------------------------------------- CUSUM
cusum_settings <- list(
  standard = list(),
  rossi_k05_h4 = list(trans = "rossi", k = 0.5, h = 4),
  anscombe = list(trans = "anscombe"),
  anscombe2nd = list(trans = "anscombe2nd", k = 0.8, h = 3),
  pearson_nb = list(trans = "pearsonNegBin", alpha = 0.2),
  m25 = list(m = 2.5),
  glm = list(m = "glm"),
  none_k1_h5 = list(trans = "none", k = 1, h = 5)
)
# Whether algo.cusum's m = "glm" fit (same formula, same training counts) converged: where
# it did not (no finite maximum), R's bounds are artefacts of its last iteration.
glm_status <- function(d, first) {
  t <- d$sts@start[2] + seq_len(first - 1) - 1
  p <- d$sts@freq
  rows <- lapply(seq_len(ncol(d$y)), function(j) {
    x <- d$y[seq_len(first - 1), j]
    fit <- suppressWarnings(glm(x ~ 1 + cos(2 * pi / p * t) + sin(2 * pi / p * t),
                                family = poisson()))
    data.frame(series = colnames(d$y)[j], converged = fit$converged,
               training_total = sum(x, na.rm = TRUE))
  })
  do.call(rbind, rows)
}
cusum_rows <- list()
for (dataset in names(datasets)) {
  d <- datasets[[dataset]]
  write_counts(d, file.path(cusum_dir, sprintf("%s.counts.csv", dataset)))
  rng <- cusum_start[[dataset]]:nrow(d$y)
  write.csv(glm_status(d, rng[1]), file.path(cusum_dir, sprintf("%s.glm_fit.csv", dataset)),
            row.names = FALSE, quote = FALSE)
  for (setting in names(cusum_settings)) {
    control <- c(list(range = rng), cusum_settings[[setting]])
    res <- suppressWarnings(cusum(d$sts, control = control, verbose = FALSE))
    write_result(res, rng, d, cusum_dir, dataset, setting)
    s <- cusum_settings[[setting]]
    cusum_rows[[length(cusum_rows) + 1]] <- data.frame(
      dataset = dataset, setting = setting,
      trans = if (is.null(s$trans)) "standard" else s$trans,
      k = if (is.null(s$k)) 1.04 else s$k, h = if (is.null(s$h)) 2.26 else s$h,
      m = if (is.null(s$m)) "" else as.character(s$m),
      alpha = if (is.null(s$alpha)) 0.1 else s$alpha,
      start = rng[1] - 1)  # our 0-based first monitored index
  }
}
write.csv(do.call(rbind, cusum_rows), file.path(cusum_dir, "settings.csv"), row.names = FALSE,
          quote = FALSE)

versions <- c(R.version.string, sprintf("surveillance %s", packageVersion("surveillance")),
              "simulation seed 20240611")
for (dir in c(ears_dir, cusum_dir)) writeLines(versions, file.path(dir, "versions.txt"))
cat("wrote", ears_dir, "and", cusum_dir, "\n")
