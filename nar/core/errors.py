"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""


class NarError(Exception):
    """An error the user caused and can fix (bad path, bad option, wrong checkpoint)."""


class ArgumentError(NarError):
    """A bad argument value, said in the library's own words. ``name`` is the Python argument
    (e.g. ``top_k``); the command line adds the flag it came from (``--top-k``)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
