"""Errors a user can cause (bad input, bad config) and that the CLI reports as one line, exit 2."""


class UserError(Exception):
    """Something the user can fix: the message names the file, key or value to change."""


class ConfigError(UserError):
    """The site file (or another config file) is invalid; message names the key and line."""
