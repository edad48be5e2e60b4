"""load_events / save_events: lossless round trips in every format; errors name the file and place."""

import numpy as np
import pytest

from hwcodesign.events import EventFileError, EventStream, load_events, save_events


def random_stream(n=500, width=80, height=60, seed=3):
    rng = np.random.default_rng(seed)
    return EventStream(rng.integers(0, width, n), rng.integers(0, height, n),
                       np.sort(rng.integers(0, 10**9, n)), rng.integers(0, 2, n), width, height)


def assert_same(a, b):
    for name in ("x", "y", "t", "p"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.width, a.height) == (b.width, b.height)


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".txt", ".csv", ".TXT"])
def test_round_trip(tmp_path, suffix):
    stream = random_stream()
    path = tmp_path / f"events{suffix}"
    save_events(stream, path)
    # .npy stores no sensor size: the caller supplies it; the others keep it.
    size = {"width": 80, "height": 60} if suffix == ".npy" else {}
    assert_same(load_events(path, **size), stream)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no staging file left behind


def test_empty_recording_round_trips(tmp_path):
    empty = EventStream(np.array([]), np.array([]), np.array([]), np.array([]), 64, 48)
    for suffix in (".npz", ".csv"):
        save_events(empty, tmp_path / f"e{suffix}")
        assert_same(load_events(tmp_path / f"e{suffix}"), empty)


def test_text_separators_are_as_written(tmp_path):
    stream = random_stream(n=3)
    save_events(stream, tmp_path / "a.csv")
    save_events(stream, tmp_path / "a.txt")
    csv_lines = (tmp_path / "a.csv").read_text().splitlines()
    txt_lines = (tmp_path / "a.txt").read_text().splitlines()
    assert csv_lines[0] == txt_lines[0] == "# 80 60"
    t, x, y, p = stream.t[0], stream.x[0], stream.y[0], stream.p[0]
    assert csv_lines[2] == f"{t},{x},{y},{p}" and txt_lines[2] == f"{t} {x} {y} {p}"


def test_text_with_header_comments_blank_lines_and_mixed_separators(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text("# recorded with some tool\n"
                    "\n"
                    "#  346, 260\n"
                    "# t x y p\n"
                    "t,x,y,p\n"
                    "100 5 7 1\n"
                    "  \t\n"
                    "100,6, 8 ,0\r\n"
                    "# 12 13  (a later two-integer comment is just a comment)\n"
                    "250\t345\t259\t1\n")
    stream = load_events(path)
    assert (stream.width, stream.height) == (346, 260)
    assert stream.t.tolist() == [100, 100, 250]
    assert stream.x.tolist() == [5, 6, 345] and stream.y.tolist() == [7, 8, 259]
    assert stream.p.tolist() == [1, 0, 1]


def test_sensor_size_from_caller_else_largest_coordinate(tmp_path):
    path = tmp_path / "bare.csv"
    path.write_text("0,5,7,1\n3,9,2,0\n")
    assert (load_events(path, width=640, height=480).width, load_events(path, width=640).height) == (640, 8)
    inferred = load_events(path)
    assert (inferred.width, inferred.height) == (10, 8)
    stream = random_stream()
    save_events(stream, tmp_path / "e.npy")
    npy = load_events(tmp_path / "e.npy")
    assert (npy.width, npy.height) == (stream.x.max() + 1, stream.y.max() + 1)


def test_file_and_caller_disagreeing_on_the_sensor_is_an_error(tmp_path):
    save_events(random_stream(), tmp_path / "e.npz")
    with pytest.raises(EventFileError, match=r"e\.npz: the file gives sensor width 80, the caller 64"):
        load_events(tmp_path / "e.npz", width=64)
    assert load_events(tmp_path / "e.npz", width=80, height=60).width == 80


@pytest.mark.parametrize("text, message", [
    ("# 80 60\n0 1 2 1\n5 1 2\n", r"bad\.txt, line 3: expected 4 fields 't x y p', got 3: '5 1 2'"),
    ("0 1 2 1\n0.0038 1 2 1\n", r"bad\.txt, line 2, field t: '0\.0038' is not an integer \(timestamps are integer microseconds\)"),
    ("0 1 2 1\n\n# c\n7 1 two 1\n", r"bad\.txt, line 4, field y: 'two' is not an integer$"),
    ("# 80 60\n0 1 2 1\n5 1 2 -1\n", r"bad\.txt, line 3, field p: -1 is not a polarity"),
    ("# 80 60\n10 1 2 1\n# c\n5 1 2 0\n", r"bad\.txt, line 4, field t: 5 us is before the previous event's 10 us"),
    ("# 80 60\n0 1 2 1\n\n1 80 2 1\n", r"bad\.txt, line 4, field x: 80 is outside the sensor \(0 <= x < 80\)"),
    ("# 80 60\n# 80 60\n0 1 2 1\n", r"bad\.txt, line 2: a second sensor-size header \(the first is on line 1\)"),
    ("# 0 60\n0 1 2 1\n", r"bad\.txt, line 1: sensor size must be positive"),
])
def test_text_errors_name_the_line_and_field(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(EventFileError, match=message):
        load_events(path)


def test_numpy_errors_name_the_field(tmp_path):
    np.savez(tmp_path / "missing.npz", x=np.zeros(2, int), y=np.zeros(2, int), t=np.zeros(2, int))
    with pytest.raises(EventFileError, match=r"missing\.npz: missing array\(s\) p \(has x, y, t\)"):
        load_events(tmp_path / "missing.npz")
    np.savez(tmp_path / "outside.npz", x=np.array([0, 9]), y=np.array([0, 0]), t=np.array([0, 1]),
             p=np.array([0, 1]), width=8, height=4)
    with pytest.raises(EventFileError, match=r"outside\.npz, field x\[1\]: 9 is outside the sensor \(0 <= x < 8\)"):
        load_events(tmp_path / "outside.npz")
    np.savez(tmp_path / "size.npz", x=np.array([0]), y=np.array([0]), t=np.array([0]), p=np.array([0]),
             width=np.array([8, 8]))
    with pytest.raises(EventFileError, match=r"size\.npz, field width: must be an integer scalar"):
        load_events(tmp_path / "size.npz")
    np.save(tmp_path / "plain.npy", np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(EventFileError, match=r"plain\.npy: not a structured array with fields x, y, t, p"):
        load_events(tmp_path / "plain.npy")
    np.save(tmp_path / "fields.npy", np.zeros(3, dtype=[("x", "i4"), ("y", "i4"), ("ts", "i8"), ("p", "u1")]))
    with pytest.raises(EventFileError, match=r"fields\.npy: missing field\(s\) t \(has x, y, ts, p\)"):
        load_events(tmp_path / "fields.npy")
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(EventFileError, match=r"broken\.npz: not a readable \.npz file"):
        load_events(tmp_path / "broken.npz")


def test_npy_with_extra_fields_loads(tmp_path):
    records = np.zeros(2, dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "<i2"), ("extra", "f4")])
    records["t"], records["x"], records["y"], records["p"] = [5, 9], [3, 4], [1, 2], [1, 0]
    np.save(tmp_path / "rich.npy", records)
    stream = load_events(tmp_path / "rich.npy", width=10, height=10)
    assert stream.t.tolist() == [5, 9] and stream.x.tolist() == [3, 4] and stream.p.tolist() == [1, 0]


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(EventFileError, match=r"rec\.aedat4: unknown event file suffix '\.aedat4'; supported: \.npz, \.npy, \.txt, \.csv"):
        load_events(tmp_path / "rec.aedat4")
    with pytest.raises(EventFileError, match=r"rec\.aedat4: unknown event file suffix"):
        save_events(random_stream(), tmp_path / "rec.aedat4")
    with pytest.raises(EventFileError, match=r"nothing\.npz: no such file"):
        load_events(tmp_path / "nothing.npz")
