"""User-facing errors: their message is shown as-is (CLI, UI, API), never a traceback."""


class RagError(Exception):
    """Base class: something the user can act on (bad input, missing or corrupt index, incompatible settings)."""


class IndexError_(RagError):
    """The index is missing, corrupt, or was built with other settings; the message says how to rebuild."""


class InputError(RagError):
    """A file or question that cannot be used; the message says why."""
