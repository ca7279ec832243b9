"""`python -m cli` runs the dyngen console script."""

from cli.main import main

main()
