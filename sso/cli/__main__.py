"""``python -m sso.cli``."""

from sso.cli import main

main()
