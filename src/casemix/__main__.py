"""``python -m casemix``: the ``casemix`` command, for environments where the script is not on PATH."""

from casemix.cli import main

if __name__ == "__main__":  # importing the module (the import-graph test does) runs nothing
    main(prog_name="casemix")
