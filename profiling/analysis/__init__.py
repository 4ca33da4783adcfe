"""Reading stored runs: comparisons, Pareto fronts, reports, plots."""
