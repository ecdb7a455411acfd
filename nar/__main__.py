"""``python -m nar`` (and ``torchrun --nproc_per_node N -m nar ...``): the `nar` command line."""
from nar.cli import main

if __name__ == "__main__":
    main()
