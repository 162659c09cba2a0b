"""The one error type users see: a one-line message naming the problem and the fix."""


class HarnessError(Exception):
    """A problem with the user's input or environment.

    The CLI prints ``str(error)`` on one line and exits non-zero, never a traceback.
    Write the message as "<what is wrong>: <how to fix it>".
    """
