"""The one way the package writes a file: all of it or none of it, even if the process or the machine dies."""
import os
import secrets


def write_atomically(path: str, write) -> None:
    """`write(file)` into a temporary file beside `path` (same folder, so the rename cannot cross file systems),
    flush and fsync it, rename it over `path` (atomic on POSIX and Windows), then fsync the folder so the
    rename itself survives a crash. If anything fails, the temporary file is removed and a file already at
    `path` is left whole. The new file's permissions follow the umask, as with `open(path, "wb")`."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    if os.name != "posix":
        return  # Windows cannot open a folder for fsync; the rename is still atomic
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
