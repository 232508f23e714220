# Reference values for detectors/farrington.py from R `surveillance::farringtonFlexible`.
#
# Regenerate (from the repository root; needs R with the surveillance package; ~10 min):
#     Rscript tests/detectors/reference/farrington.R
# Generated with R 4.2.2 and surveillance 1.20.3 (the versions actually used are written to
# tests/assets/detectors/farrington/versions.txt on every run).
#
# Every series is wrapped in an `sts` without dates (epochAsDate = FALSE), frequency 52
# (weekly) or 365 (daily), so years are counted by position as detectors/farrington.py does.
# Datasets (weekly ones bundled with surveillance):
#   salmNewport 16 states x 528 weeks (sparse)   ha.sts 12 districts x 290 weeks (sparse)
#   momo 8 age groups x 782 weeks (large counts, population)   salmAllOnset 1 x 778 weeks
#   salmAllOnsetNA: salmAllOnset with missing weeks   measlesDE 16 states x 156 weeks
#   momoGap: 2 momo series missing one 5-week block a year (a season level without data)
#   fluBYBW: the 6 districts with most cases x 416 weeks   salmonella.agona 1 x 312 weeks
#   influMen 2 x 312 weeks
#   daily: 12 simulated daily series x 1460 days (seeded: sparse, weekday pattern,
#          seasonal, trend, outbreaks, negative binomial, all zero, missing days, high
#          counts, a step change, zero-inflated), with a population for the offset setting.
# Settings (R control lists) are in `settings` below; each runs on the datasets long
# enough for it, over the last 104 weeks / 200 days (or fewer when history is short).
# Output in tests/assets/detectors/farrington/:
#   cases.csv               one row per (dataset, setting): R's control values, the range
#                           (1-based, inclusive) and R's run time in seconds
#   counts/<dataset>.csv.gz  date + one column per series (NA = missing)
#   population/<dataset>.csv.gz  the same layout, for the population offset setting
#   results.csv.gz          dataset, setting, series (0-based), t (0-based), R's upperbound,
#                           expected, alarm (1/0), pvalue, score, trend (1/0), phi, and
#                           error = 1 where R stopped with an error at that point (all NA)
# Numbers have 10 significant digits (parity is checked at 1e-3 relative).

suppressPackageStartupMessages(library(surveillance))

out <- file.path("tests", "assets", "detectors", "farrington")
stopifnot(dir.exists(dirname(out)))
dir.create(file.path(out, "counts"), recursive = TRUE, showWarnings = FALSE)
dir.create(file.path(out, "population"), recursive = TRUE, showWarnings = FALSE)

# ---------------------------------------------------------------- datasets
load_sts <- function(name) {
  e <- new.env()
  data(list = name, envir = e, package = "surveillance")
  x <- get(name, envir = e)
  if (inherits(x, "disProg")) x <- disProg2sts(x)
  x
}

weekly <- function(name, columns = NULL) {
  x <- load_sts(name)
  obs <- observed(x)
  pop <- population(x)
  if (!is.null(columns)) {
    obs <- obs[, columns, drop = FALSE]
    pop <- pop[, columns, drop = FALSE]
  }
  list(counts = obs, population = pop, freq = 52,
       dates = seq(as.Date("2000-01-03"), by = "week", length.out = nrow(obs)))
}

simulate_daily <- function() {
  set.seed(20240917)
  n <- 1460
  t <- seq_len(n)
  season <- function(a) exp(a * cos(2 * pi * (t - 30) / 365))
  dow <- rep(c(1.2, 1.1, 1, 1, 1, 0.7, 0.6), length.out = n)
  outbreaks <- function() {
    x <- rpois(n, 5 * season(0.2))
    idx <- c(400:410, 1300:1306, 1400:1403)
    x[idx] <- x[idx] + rpois(length(idx), 8)
    x
  }
  missing <- function() {
    x <- rpois(n, 2 * season(0.3))
    x[c(100:130, 500, 900:905, 1300, 1320:1322, 1440)] <- NA
    x
  }
  counts <- cbind(
    sparse = rpois(n, 0.2),
    low = rpois(n, season(0.3)),
    weekday = rpois(n, 3 * dow),
    seasonal = rpois(n, 10 * season(0.5)),
    trend = rpois(n, 40 * season(0.3) * exp(0.0004 * t)),
    outbreaks = outbreaks(),
    negbin = rnbinom(n, mu = 8 * season(0.4), size = 2),
    zero = rep(0, n),
    missing = missing(),
    high = rpois(n, 100 * season(0.2) * dow),
    step = rpois(n, ifelse(t > 800, 12, 6)),
    inflated = rbinom(n, 1, 0.3) * rpois(n, 3)
  )
  population <- outer(10000 * (1 + 0.2 * t / n), seq(1, 3, length.out = ncol(counts)))
  list(counts = counts, population = population, freq = 365,
       dates = seq(as.Date("2019-01-01"), by = "day", length.out = n))
}

salm <- weekly("salmAllOnset")
salm_na <- salm
salm_na$counts[c(300, 301, 420:425, 700, 760, 771), 1] <- NA
# Two momo series with a 5-week block missing in each of the last 5 years: at the last
# week a whole level of Noufaily's seasonal factor has no data (an aliased GLM column).
momo_gap <- weekly("momo", 2:3)
for (i in 1:5) {
  n <- nrow(momo_gap$counts)
  momo_gap$counts[n - 52 * i + (4:8), ] <- NA
}
flu <- load_sts("fluBYBW")
flu_top <- order(colSums(observed(flu)), decreasing = TRUE)[1:6]

datasets <- list(
  salmNewport = weekly("salmNewport"),
  ha = weekly("ha.sts"),
  momo = weekly("momo"),
  momoGap = momo_gap,
  salmAllOnset = salm,
  salmAllOnsetNA = salm_na,
  measlesDE = weekly("measlesDE"),
  fluBYBW = weekly("fluBYBW", flu_top),
  salmonellaAgona = weekly("salmonella.agona"),
  influMen = weekly("influMen"),
  daily = simulate_daily()
)

# ---------------------------------------------------------------- settings
noufaily <- list(noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
                 pThresholdTrend = 1, thresholdMethod = "nbPlugin")
settings <- list(
  defaults = list(),
  farrington = list(weightsThreshold = 1),
  noufaily = noufaily,
  muan = modifyList(noufaily, list(thresholdMethod = "muan", alpha = 0.01)),
  sqrt = list(b = 3, w = 2, powertrans = "1/2", alpha = 0.01, limit54 = c(0, 1)),
  flat = list(b = 2, w = 4, powertrans = "none", trend = FALSE, reweight = FALSE,
              noPeriods = 4, pastWeeksNotIncluded = 0, limit54 = c(3, 2)),
  offset = list(b = 3, populationOffset = TRUE, powertrans = "1/2"),
  daily_farrington = list(b = 3, weightsThreshold = 1),
  daily_noufaily = modifyList(noufaily, list(b = 3)),
  daily_noufaily_b2 = modifyList(noufaily, list(b = 2)),
  daily_offset = modifyList(noufaily, list(b = 2, populationOffset = TRUE,
                                           thresholdMethod = "muan"))
)
plan <- list(
  salmNewport = c("defaults", "farrington", "noufaily", "muan", "sqrt", "flat"),
  ha = c("defaults", "noufaily", "sqrt", "flat"),
  momo = c("defaults", "noufaily", "muan", "sqrt", "offset"),
  momoGap = c("defaults", "noufaily"),
  salmAllOnset = c("defaults", "farrington", "noufaily", "muan", "sqrt", "flat"),
  salmAllOnsetNA = c("defaults", "noufaily", "flat"),
  measlesDE = c("flat"),
  fluBYBW = c("defaults", "farrington", "noufaily", "sqrt", "flat"),
  salmonellaAgona = c("defaults", "noufaily", "sqrt"),
  influMen = c("defaults", "farrington", "noufaily", "flat"),
  daily = c("daily_farrington", "daily_noufaily", "daily_noufaily_b2", "daily_offset")
)
n_eval <- c(`52` = 104, `365` = 200)

# ---------------------------------------------------------------- run
full_control <- function(control) {
  defaults <- eval(formals(farringtonFlexible)$control)
  ctrl <- modifyList(defaults, control, keep.null = TRUE)
  ctrl$glmWarnings <- FALSE
  ctrl
}

run_series <- function(x, j, range, ctrl) {
  one <- sts(observed = x$counts[, j, drop = FALSE], frequency = x$freq, start = c(2000, 1),
             population = x$population[, j, drop = FALSE])
  collect <- function(r, k) {
    ctl <- r@control
    data.frame(series = j - 1, t = k - 1, upperbound = as.vector(upperbound(r)),
               expected = as.vector(ctl$expected), alarm = as.integer(as.vector(alarms(r))),
               pvalue = as.vector(ctl$pvalue), score = as.vector(ctl$score),
               trend = as.integer(as.vector(ctl$trend)), phi = as.vector(ctl$phiVector),
               error = 0L)
  }
  attempt <- function(k) {
    tryCatch(suppressWarnings(collect(farringtonFlexible(one, modifyList(ctrl, list(range = k))), k)),
             error = function(e) NULL)
  }
  whole <- attempt(range)
  if (!is.null(whole)) return(whole)
  # R stopped with an error somewhere in the range: redo point by point, marking those.
  do.call(rbind, lapply(range, function(k) {
    r <- attempt(k)
    if (is.null(r)) {
      r <- data.frame(series = j - 1, t = k - 1, upperbound = NA, expected = NA, alarm = NA,
                      pvalue = NA, score = NA, trend = NA, phi = NA, error = 1L)
    }
    r
  }))
}

write_gz <- function(frame, path) {
  con <- gzfile(path, "w")
  write.csv(frame, con, row.names = FALSE, na = "")
  close(con)
}

options(digits = 10)
results <- list()
cases <- list()
for (name in names(plan)) {
  x <- datasets[[name]]
  colnames(x$counts) <- make.names(colnames(x$counts), unique = TRUE)
  write_gz(data.frame(date = x$dates, x$counts, check.names = FALSE),
           file.path(out, "counts", paste0(name, ".csv.gz")))
  if (any(grepl("offset", plan[[name]]))) {
    pop <- x$population
    colnames(pop) <- colnames(x$counts)
    write_gz(data.frame(date = x$dates, pop, check.names = FALSE),
             file.path(out, "population", paste0(name, ".csv.gz")))
  }
  for (setting in plan[[name]]) {
    ctrl <- full_control(settings[[setting]])
    n <- nrow(x$counts)
    first <- x$freq * ctrl$b + ctrl$w + 1
    stopifnot(first <= n)
    range <- max(first, n - n_eval[[as.character(x$freq)]] + 1):n
    seconds <- system.time({
      res <- do.call(rbind, lapply(seq_len(ncol(x$counts)), run_series, x = x, range = range,
                                   ctrl = ctrl))
    })[["elapsed"]]
    results[[length(results) + 1]] <- cbind(dataset = name, setting = setting, res)
    past <- if (is.null(ctrl$pastWeeksNotIncluded)) NA else ctrl$pastWeeksNotIncluded
    cases[[length(cases) + 1]] <- data.frame(
      dataset = name, setting = setting, freq = x$freq, n_series = ncol(x$counts),
      b = ctrl$b, w = ctrl$w, reweight = ctrl$reweight, weightsThreshold = ctrl$weightsThreshold,
      alpha = ctrl$alpha, trend = ctrl$trend, pThresholdTrend = ctrl$pThresholdTrend,
      limit54_cases = ctrl$limit54[1], limit54_period = ctrl$limit54[2],
      powertrans = ctrl$powertrans, noPeriods = ctrl$noPeriods, pastWeeksNotIncluded = past,
      thresholdMethod = ctrl$thresholdMethod, populationOffset = ctrl$populationOffset,
      range_from = min(range), range_to = max(range), r_seconds = seconds)
    cat(sprintf("%-16s %-18s %3d series x %3d points  %6.1f s\n", name, setting,
                ncol(x$counts), length(range), seconds))
  }
}
results <- do.call(rbind, results)
for (col in c("upperbound", "expected", "pvalue", "score", "phi")) {
  results[[col]] <- ifelse(is.na(results[[col]]), NA, signif(results[[col]], 10))
}
write_gz(results, file.path(out, "results.csv.gz"))
write.csv(do.call(rbind, cases), file.path(out, "cases.csv"), row.names = FALSE, na = "")
writeLines(c(R.version.string,
             paste("surveillance", as.character(packageVersion("surveillance"))),
             paste("generated", format(Sys.Date()))),
           file.path(out, "versions.txt"))
