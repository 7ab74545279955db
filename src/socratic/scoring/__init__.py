"""Stage 4, scoring: accuracy with Wilson intervals, failure buckets, decomposition shapes, exact
McNemar tests, and the report folder (results.md, plots, the one-page report.html)."""
