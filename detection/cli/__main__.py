"""`python -m detection.cli ...`: the same command line as the installed `detection` script."""

from detection.cli import app

app(prog_name="detection")
