"""What a fit prints and exports: summaries, Stata and lavaan syntax, diagrams, plots, comparisons."""
