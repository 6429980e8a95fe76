"""`owb view`: a read-only local web viewer over run directories (leaderboard, run pages, a paged sample browser,
the paired diff of two runs, inline-SVG plots) and its static export. Needs the `view` extra (Starlette, uvicorn)."""
