"""``python -m casemix``: the ``casemix`` command, for environments where the script is not on PATH."""

from casemix.cli import main

main(prog_name="casemix")
