"""`python -m harness`: the owb command line."""

from harness.cli import main

main()
