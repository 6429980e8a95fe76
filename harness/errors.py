"""The one exception a user can cause: it ends a command with one clear line and exit code 2."""


class UserError(Exception):
    """Bad input or environment (unknown model, malformed YAML, missing data, no GPU, server down)."""
