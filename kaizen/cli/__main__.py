"""``python -m kaizen.cli``: the ``kaizen`` command without its console script."""

from kaizen.cli import main

main(prog_name="kaizen")
