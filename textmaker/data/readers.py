"""Reading user files with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

from textmaker.errors import TextmakerError


def require_file(path: str | Path, what: str = "file") -> Path:
    path = Path(path)
    if not path.exists():
        raise TextmakerError(f"{path}: no such {what}; check the path")
    if what == "file" and path.is_dir():
        raise TextmakerError(f"{path}: is a folder, expected a {what}")
    return path


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Decode a whole file; on bad bytes, say on which line they are."""
    path = require_file(path)
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TextmakerError(
            f"{path} line {line}: byte 0x{data[e.start]:02x} is not valid {encoding}; "
            f"re-save the file as UTF-8 or pass the right encoding (e.g. --encoding latin-1)"
        ) from None
    except LookupError:
        raise TextmakerError(f"{path}: unknown encoding {encoding!r}") from None
    return text.removeprefix("\ufeff")
