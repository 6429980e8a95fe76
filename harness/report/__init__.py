"""Reading runs back: tables, comparisons and exports, plots, and `owb check`."""
