"""A recording is capped by default, so a long run can never fill its disk (an 8 GB tape once did).

The default comes from the free space of the tape's filesystem: the tests fake that number with small
values instead of writing gigabytes.
"""

import os
import shutil
from collections import namedtuple

import pytest

import engine
import engine.tape
import engine.tape.cap
from app.cli import main
from engine.tape.cap import CEILING, default_cap, human_size
from engine.tape.info import describe, tape_info
from tests.engine.tape.helpers import train
from tests.engine.tape.test_cli import script  # noqa: F401  (the fixture)

GiB = 1 << 30
Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def free_space(monkeypatch):
    """Pretend the disk has `free` bytes free: set(free)."""
    def set_free(free: int) -> None:
        monkeypatch.setattr(engine.tape.cap.shutil, "disk_usage", lambda folder: Usage(free * 4, free * 3, free))
    return set_free


# ---- the default, as a number ------------------------------------------------------------------------
@pytest.mark.parametrize(("free", "cap"), [
    (500 * GiB, CEILING),  # a big disk: the fixed ceiling
    (20 * GiB, 10 * GiB),
    (8 * GiB, 4 * GiB),  # the disk that an 8 GB tape filled: half of it stays free
    (1000, 500),
    (0, 0),  # a full disk: nothing may be written
])
def test_the_default_cap_is_the_smaller_of_the_ceiling_and_half_the_free_space(free, cap):
    assert default_cap(free) == cap
    assert default_cap(free) < free or free == 0  # never the whole disk


def test_the_default_cap_takes_its_ceiling_and_fraction_as_data():
    assert default_cap(100 * GiB, ceiling=GiB, fraction=0.25) == GiB
    assert default_cap(2 * GiB, ceiling=GiB, fraction=0.25) == GiB // 2
    for bad in ({"free_bytes": -1}, {"free_bytes": 1, "fraction": 1.0}, {"free_bytes": 1, "ceiling": 0}):
        with pytest.raises(ValueError, match="default_cap"):
            default_cap(**bad)


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 bytes"), (1, "1 byte"), (1023, "1,023 bytes"), (1024, "1.0 KiB"), (1536 << 10, "1.5 MiB"),
    ((1 << 20) - 1, "1.0 MiB"), (2 * GiB, "2.0 GiB"), (CEILING, "10.0 GiB"), (3 << 40, "3.0 TiB"),
])
def test_sizes_are_written_for_people(n, text):
    assert human_size(n) == text


# ---- the recorder --------------------------------------------------------------------------------------
@pytest.mark.parametrize("capture", ["structure", "summary", "values"])
def test_every_capture_tier_is_capped_by_default(tmp_path, free_space, capture):
    free_space(64 * GiB)
    path = tmp_path / "run.tape"
    with engine.record(path, capture=capture) as rec:
        train(1)
    assert rec.max_bytes == 10 * GiB and rec.status == "complete"
    with engine.tape.open(path) as tape:
        info = tape_info(tape)
    assert info["max_bytes"] == 10 * GiB
    assert "size cap 10.0 GiB" in describe(info).splitlines()[4]  # the capture line


def test_the_default_is_measured_on_the_tapes_own_filesystem(tmp_path):
    with engine.record(tmp_path / "run.tape", capture="structure") as rec:
        pass
    free = shutil.disk_usage(tmp_path).free
    assert 0 < rec.max_bytes <= min(CEILING, free // 2 + (1 << 20))  # what the tape took since is slack


def test_a_nearly_full_disk_stops_the_recording_before_it_fills(tmp_path, free_space):
    free_space(600_000)  # the default cap: 300,000 bytes
    path = tmp_path / "run.tape"
    with engine.record(path, capture="values", flush_interval=0.01) as rec:
        train(150)
    assert rec.status == "size cap of 293.0 KiB reached"
    assert os.path.getsize(path) < 600_000


@pytest.mark.parametrize("no_cap", [None, 0])
def test_none_or_zero_means_no_cap(tmp_path, free_space, no_cap):
    free_space(1000)  # a default would stop this at once
    path = tmp_path / "run.tape"
    with engine.record(path, capture="values", max_bytes=no_cap) as rec:
        train(2)
    assert rec.max_bytes is None and rec.status == "complete"
    with engine.tape.open(path) as tape:
        info = tape_info(tape)
    assert info["max_bytes"] is None and "size cap" not in describe(info)


def test_a_bad_cap_is_refused_before_the_tape_is_made(tmp_path):
    with pytest.raises(ValueError, match="max_bytes must be a number of bytes"):
        engine.record(tmp_path / "run.tape", max_bytes="lots")
    assert not (tmp_path / "run.tape").exists()


def test_a_small_explicit_cap_drops_values_then_summaries_then_stops(tmp_path, monkeypatch):
    # the writer looks at the size between slices of a batch; a slice of 256 values-tier events is larger
    # than the 20 % between two levels of this small cap, so on a busy machine one slice could jump from
    # dropping values straight past the cap: slices of 8 make every level's turn certain
    from engine.tape.writer import Recorder

    monkeypatch.setattr(Recorder, "_CAP_SLICE", 8)
    path = tmp_path / "run.tape"
    with engine.record(path, capture="values", max_bytes=300_000, flush_interval=0.01) as rec:
        train(150)
    assert rec.status == "size cap of 293.0 KiB reached"
    assert os.path.getsize(path) < 600_000
    with engine.tape.open(path) as tape:
        order = []
        for drop in tape.drops():
            if drop.what not in order:
                order.append(drop.what)
        assert order[0] == "values" and order[-1] == "events" and "summaries" in order
        assert sum(1 for _ in tape.events()) == tape.counts()["events"] > 0
        info = tape_info(tape)
    assert info["max_bytes"] == 300_000
    assert "(size cap of 293.0 KiB reached)" in describe(info).splitlines()[0]


def test_info_writes_the_cap_of_an_older_tape_for_people_too(tmp_path):
    path = tmp_path / "run.tape"
    with engine.record(path, capture="structure") as rec:
        train(1)
    info = tape_info(engine.tape.open(path))
    line = describe({**info, "status": "size cap of 314572800 bytes reached"}).splitlines()[0]
    assert line.endswith("(size cap of 300.0 MiB reached)")
    assert rec.status == "complete"


# ---- the command line ------------------------------------------------------------------------------
def test_record_prints_the_default_cap(script, tmp_path, free_space, capsys):  # noqa: F811
    free_space(64 * GiB)
    assert main(["record", str(script), "-o", str(tmp_path / "r.tape")]) == 0
    assert capsys.readouterr().err.rstrip().endswith("r.tape; size cap 10.0 GiB")


@pytest.mark.parametrize("none", ["none", "None", "0"])
def test_max_size_none_parses_and_means_no_cap(script, tmp_path, free_space, capsys, none):  # noqa: F811
    free_space(1000)
    out = tmp_path / "r.tape"
    assert main(["record", str(script), "-o", str(out), "--capture", "values", "--max-size", none]) == 0
    assert capsys.readouterr().err.rstrip().endswith("r.tape; no size cap")
    with engine.tape.open(out) as tape:
        assert tape.meta["status"] == "complete" and tape.meta["max_bytes"] == ""


def test_record_says_when_the_cap_was_hit(script, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "r.tape"
    assert main(["record", str(script), "-o", str(out), "--max-size", "1K"]) == 0
    err = capsys.readouterr().err
    assert "r.tape (size cap of 1.0 KiB reached: the rest of the run was not recorded; --max-size sets the cap)" in err
    assert main(["info", str(out)]) == 0
    assert "(size cap of 1.0 KiB reached)" in capsys.readouterr().out.splitlines()[0]


def test_the_help_documents_the_default_and_no_cap(capsys):
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Default: the smaller of 10G and half the free space" in text and "0 or none: no cap" in text


def test_far_from_its_cap_a_batch_is_committed_whole(tmp_path, monkeypatch):
    # with the default cap every flush was cut into 256-event transactions, as if the cap were near
    from engine.tape.writer import Recorder

    sizes = []
    write = Recorder.write_batch
    monkeypatch.setattr(Recorder, "write_batch", lambda self, items: (sizes.append(len(items)), write(self, items)))
    with engine.record(tmp_path / "run.tape", "structure", flush_interval=60.0, batch_events=4096) as recorder:
        train(2)
        assert recorder.flush()  # a first commit: the size per event is known from then on
        train(100)  # about 1,500 events, committed when recording ends
    assert max(sizes[1:]) > Recorder._CAP_SLICE
