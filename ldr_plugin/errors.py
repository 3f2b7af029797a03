"""The one exception family the CLI turns into a clear message and a non-zero exit code."""


class LdrError(Exception):
    """Bad input or an unavailable host, described so that a user can act on it.

    The message names the file, field, class or model concerned and what was expected.
    """


class DatasetError(LdrError):
    """A dataset a cell cannot score (too few samples of a class, an unknown split ...): that cell
    fails, the model's other cells still run."""


class UnknownNameError(LdrError, KeyError):
    """A name that no provider of a plugin group declares; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
