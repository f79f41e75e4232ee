"""write_atomically: the whole file or the previous one, never a mix, and nothing left behind."""
import os
import stat

import pytest

from tinygrad_cnn.atomic_file import write_atomically


def test_writes_exactly_the_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    write_atomically(str(path), lambda file: file.write(b"first"))
    write_atomically(str(path), lambda file: file.write(b"second"))
    assert path.read_bytes() == b"second" and os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_write_keeps_the_previous_file_and_removes_the_temporary(tmp_path, failure):
    path = tmp_path / "out.bin"
    path.write_bytes(b"previous")

    def write(file):
        file.write(b"half of the new")
        raise failure

    with pytest.raises(type(failure)):
        write_atomically(str(path), write)
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["out.bin"]


def test_an_interrupted_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    path.write_bytes(b"previous")

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(path), lambda file: file.write(b"new"))
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.skipif(os.name != "posix", reason="folders are fsynced on POSIX only")
def test_the_data_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(descriptor):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "fsync file")
        real_fsync(descriptor)

    def replace(source, destination):
        events.append(("rename", os.path.dirname(source), os.path.dirname(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomically(str(tmp_path / "out.bin"), lambda file: file.write(b"data"))
    assert events == ["fsync file", ("rename", str(tmp_path), str(tmp_path)), "fsync folder"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_follow_the_umask_as_a_plain_open_would(tmp_path):
    previous = os.umask(0o027)
    try:
        write_atomically(str(tmp_path / "out.bin"), lambda file: file.write(b"data"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "out.bin").st_mode) == 0o640
