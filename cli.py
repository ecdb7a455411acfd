"""Run nar from a checkout without installing: `python cli.py sample --prior sundae`."""
from nar.cli import main

if __name__ == "__main__":
    main()
