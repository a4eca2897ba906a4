"""The one exception type a user should ever see from textmaker.

Every message is a single line that names the file, line or field at fault and
says what to do; the CLI prints it without a traceback.
"""


class TextmakerError(Exception):
    """Bad input or a bad model directory, explained in one line."""
