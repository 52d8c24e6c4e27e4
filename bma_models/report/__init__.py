"""Report writers: run directories, CSV/Excel/charts, manifest (the only file writers)."""
