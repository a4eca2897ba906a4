import pytest

from textmaker.io import atomic_directory


def test_failed_write_keeps_the_old_directory(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as d:
        (d / "a.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as d:
            (d / "a.txt").write_text("second")
            raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no half-written leftovers


def test_kept_entries_survive_a_replace_without_being_copied(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as d:
        (d / "a.txt").write_text("first")
        (d / "members" / "seed0").mkdir(parents=True)
        (d / "members" / "seed0" / "w.bin").write_bytes(b"weights")
    inode = (target / "members" / "seed0" / "w.bin").stat().st_ino
    with pytest.raises(RuntimeError):  # a failed write leaves everything as it was
        with atomic_directory(target, keep=("members",)) as d:
            (d / "a.txt").write_text("second")
            raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "first" and (target / "members" / "seed0" / "w.bin").is_file()
    with atomic_directory(target, keep=("members", "absent")) as d:
        (d / "a.txt").write_text("second")
    assert (target / "a.txt").read_text() == "second"
    kept = target / "members" / "seed0" / "w.bin"
    assert kept.read_bytes() == b"weights" and kept.stat().st_ino == inode  # the same file, linked, not copied
    assert not (target / "absent").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    (target / "members" / "seed1").mkdir()
    with atomic_directory(target, keep=("members/seed1",)) as d:  # a path inside: the rest of its folder goes
        (d / "a.txt").write_text("fourth")
    assert [p.name for p in (target / "members").iterdir()] == ["seed1"]
    with atomic_directory(target) as d:  # not kept unless asked
        (d / "a.txt").write_text("third")
    assert not (target / "members").exists()


def test_an_interrupted_averaged_run_is_textmakers_to_resume(tmp_path):
    from textmaker.io import is_textmaker_dir

    run = tmp_path / "run"
    (run / "members" / "seed0").mkdir(parents=True)
    (run / "members" / "seed0" / "config.json").write_text('{"task": "text_classifier"}')
    (run / "members" / "seed1" / "checkpoints").mkdir(parents=True)  # the member training when it was killed
    (run / "members" / "seed1" / "checkpoints" / "trainer_state.json").write_text("{}")
    (run / "members" / ".seed1.lock").write_text("1")
    assert is_textmaker_dir(run)
    (run / "members" / "notes.txt").write_text("mine")  # a file textmaker did not make: not its to replace
    assert not is_textmaker_dir(run)
    (run / "members" / "notes.txt").unlink()
    (run / "data.csv").write_text("mine")
    assert not is_textmaker_dir(run)
