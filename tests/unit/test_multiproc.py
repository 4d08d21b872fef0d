"""The multiprocess metrics directory gunicorn's master keeps (infra/multiproc.py)."""

from __future__ import annotations

from infra import multiproc


def test_without_a_directory_the_service_makes_one_and_removes_it_at_exit():
    environ: dict[str, str] = {}
    path = multiproc.prepare(environ)
    assert path.is_dir() and not any(path.iterdir())
    assert environ[multiproc.MULTIPROC_VARIABLE] == str(path)
    (path / "counter_123.db").write_bytes(b"")
    multiproc.cleanup(environ)
    assert not path.exists()


def test_the_operators_directory_is_emptied_of_old_files_and_kept(tmp_path):
    (tmp_path / "counter_1.db").write_bytes(b"old")
    (tmp_path / "histogram_2.db").write_bytes(b"old")
    (tmp_path / "README").write_text("not ours")
    environ = {multiproc.MULTIPROC_VARIABLE: str(tmp_path)}
    assert multiproc.prepare(environ) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README"]
    multiproc.cleanup(environ)
    assert tmp_path.is_dir()


def test_a_missing_operators_directory_is_made(tmp_path):
    target = tmp_path / "metrics" / "here"
    assert multiproc.prepare({multiproc.MULTIPROC_VARIABLE: str(target)}).is_dir()


def test_a_new_master_of_a_usr2_upgrade_carries_on_with_the_directory():
    old: dict[str, str] = {}
    path = multiproc.prepare(old)
    (path / "counter_7.db").write_bytes(b"the old master's workers")
    new = dict(old)  # the re-exec'd master inherits the environment
    assert multiproc.prepare(new, reexec=True) == path
    assert (path / "counter_7.db").exists()
    multiproc.cleanup(old, handed_over=True)  # the old master leaves
    assert path.exists()
    multiproc.cleanup(new)
    assert not path.exists()
