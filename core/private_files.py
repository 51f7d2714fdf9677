"""Files only this service's user may read: the embedded database, emails, the signing key.

`DATA_DIR` holds one-time codes (in emails and the database) and the JWT key, so what this
process creates there is private whatever the umask: directories 0700, files 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_directory(path: Path) -> None:
    """Creates `path` and any missing parents as 0700; leaves existing ones as they are."""
    missing = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIRECTORY_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(directory, PRIVATE_DIRECTORY_MODE)  # mkdir's mode is filtered by the umask


def create_private_file(path: Path) -> None:
    """Creates `path` empty as 0600 unless it exists (then it is left as it is)."""
    make_private_directory(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    os.close(descriptor)
