"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""


class NarError(Exception):
    """An error the user caused and can fix (bad path, bad option, wrong checkpoint)."""
