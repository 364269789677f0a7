"""Annotation and pairs CSV reading, writing and validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from personpose.data.annotations import (
    DataFormatError,
    check_images_exist,
    format_annotation_line,
    read_annotations,
    read_pairs,
    write_annotations,
    write_pairs,
)

KP_Y = [11, 25, 24, 42, 57, 25, 44, 59, 65, 86, 109, 65, 94, 117, 8, 8, 10, 9]
KP_X = [35, 35, 21, 15, 28, 48, 54, 56, 32, 18, 13, 48, 49, 55, 32, 38, 27, 43]
HEADER = "name:keypoints_y:keypoints_x"


def _row(name: str, ys=KP_Y, xs=KP_X, sep: str = ": ") -> str:
    return f"{name}{sep}{ys}{sep}{xs}"


def _write(tmp_path, lines, name="ann.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_with_and_without_space_after_colon(tmp_path):
    missing = [-1] * 18
    path = _write(
        tmp_path,
        [
            HEADER,
            _row("a_1.jpg", sep=": "),
            _row("a_2.jpg", sep=":"),
            _row("b_1.jpg", missing, missing),
        ],
    )
    ann = read_annotations(path, (128, 64))
    assert ann.names == ["a_1.jpg", "a_2.jpg", "b_1.jpg"]
    assert ann.lines == [2, 3, 4]
    assert ann.keypoints.dtype == np.int64 and ann.keypoints.shape == (3, 18, 2)
    np.testing.assert_array_equal(ann["a_2.jpg"][:, 0], KP_Y)
    np.testing.assert_array_equal(ann["a_2.jpg"][:, 1], KP_X)
    assert (ann["b_1.jpg"] == -1).all()
    assert ann.line_of("b_1.jpg") == 4 and "a_1.jpg" in ann and "zz" not in ann


def test_write_then_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    kp = rng.integers(0, 64, size=(5, 18, 2))
    kp[1, 3] = -1
    names = [f"p{i}_x.png" for i in range(5)]
    path = write_annotations(tmp_path / "out.csv", names, kp)
    text = path.read_text().splitlines()
    assert text[0] == HEADER
    assert text[2] == format_annotation_line(names[1], kp[1])
    assert text[2].startswith("p1_x.png: [")  # PATN style: a space after each ':'
    ann = read_annotations(path, (64, 64))
    assert ann.names == names
    np.testing.assert_array_equal(ann.keypoints, kp)
    pairs = [("a.png", "b.png"), ("b.png", "a.png")]
    ppath = write_pairs(tmp_path / "pairs.csv", pairs)
    assert ppath.read_text() == "from,to\na.png,b.png\nb.png,a.png\n"
    assert read_pairs(ppath).pairs == pairs


def test_real_market_annotations(real_data):
    ann = read_annotations(real_data / "market" / "market-annotation-train.csv", (128, 64))
    assert len(ann) == 187
    assert ann.names[0] == "0007_c2s3_070952_01.jpg"
    np.testing.assert_array_equal(ann.keypoints[0, :, 0], KP_Y)
    np.testing.assert_array_equal(ann.keypoints[0, :, 1], KP_X)
    pairs = read_pairs(real_data / "market" / "market-pairs-train.csv", ann)
    assert len(pairs) == 100
    assert pairs[0] == ("0007_c2s3_070952_01.jpg", "0007_c3s3_077419_03.jpg")
    assert pairs.lines[0] == 2


def test_real_full_annotation_lists(real_data):
    ann = read_annotations(real_data / "annotations" / "market-annotation-test.csv", (128, 64))
    assert len(ann) == 19732
    fashion = read_annotations(real_data / "annotations" / "fasion-annotation-test.csv", (256, 256))
    assert len(fashion) == 4038
    # the 256x256 coordinates do not fit the 176-wide crop: an error without a size policy
    with pytest.raises(DataFormatError, match="outside the 256x176 image"):
        read_annotations(real_data / "annotations" / "fasion-annotation-test.csv", (256, 176))


def _with(values: list, j: int, v) -> list:
    out = list(values)
    out[j] = v
    return out


BAD_ROWS = [
    # (bad row, expected phrase)
    (_row("x_1.jpg", KP_Y[:17]), "keypoints_y has 17 values, expected 18"),
    (_row("x_1.jpg", KP_Y, KP_X + [3]), "keypoints_x has 19 values, expected 18"),
    (_row("x_1.jpg", _with(KP_Y, 5, 12.5)), "keypoints_y[5] (l_shoulder) = 12.5 is not an integer"),
    (
        "x_1.jpg: " + json.dumps(KP_Y) + ": " + json.dumps(_with(KP_X, 2, "7")),
        "keypoints_x[2] (r_shoulder) = '7' is not an integer",
    ),
    ("x_1.jpg: [1, 2, oops]: " + str(KP_X), "keypoints_y is not a JSON list"),
    (
        _row("x_1.jpg", _with(KP_Y, 9, 128)),
        "joint 9 (r_knee) (x_1.jpg) at (y=128, x=18) lies outside the 128x64 image",
    ),
    (
        _row("x_1.jpg", KP_Y, _with(KP_X, 4, 64)),
        "joint 4 (r_wrist) (x_1.jpg) at (y=57, x=64) lies outside",
    ),
    (_row("x_1.jpg", _with(KP_Y, 3, -1)), "y=-1, x=15: a missing joint must be -1 in both lists"),
    (_row("x_1.jpg", _with(KP_Y, 3, -2), _with(KP_X, 3, -2)), "negative coordinates"),
    (_row("a_1.jpg"), "duplicate name 'a_1.jpg' (first on line 2)"),
    ("x_1.jpg " + str(KP_Y), "expected 3 ':'-separated fields"),
    (": " + str(KP_Y) + ": " + str(KP_X), "empty image name"),
]


@pytest.mark.parametrize(("row", "expected"), BAD_ROWS)
def test_annotation_errors_name_file_line_and_expectation(tmp_path, row, expected):
    path = _write(tmp_path, [HEADER, _row("a_1.jpg"), row, _row("b_1.jpg")])
    with pytest.raises(DataFormatError) as err:
        read_annotations(path, (128, 64))
    msg = str(err.value)
    assert msg.startswith(f"{path}:3: "), msg
    assert expected in msg
    assert isinstance(err.value, ValueError)


def test_annotation_header_and_missing_file(tmp_path):
    path = _write(tmp_path, ["name,keypoints_y,keypoints_x", _row("a_1.jpg")])
    with pytest.raises(DataFormatError, match=rf"^{path}:1: expected header 'name:keypoints_y"):
        read_annotations(path)
    with pytest.raises(DataFormatError, match="cannot read annotation file"):
        read_annotations(tmp_path / "absent.csv")
    tolerant = _write(tmp_path, ["name: keypoints_y: keypoints_x", _row("a_1.jpg")], "t.csv")
    assert read_annotations(tolerant).names == ["a_1.jpg"]


def test_without_image_size_only_format_is_checked(tmp_path):
    path = _write(tmp_path, [HEADER, _row("x_1.jpg", [500] * 18, [900] * 18)])
    assert read_annotations(path).keypoints.max() == 900


def test_pairs_errors(tmp_path):
    ann = read_annotations(_write(tmp_path, [HEADER, _row("a_1.jpg"), _row("a_2.jpg")]))
    good = tmp_path / "pairs.csv"
    good.write_text("from,to\na_1.jpg,a_2.jpg\na_2.jpg,a_1.jpg\n")
    assert len(read_pairs(good, ann)) == 2

    absent = tmp_path / "absent.csv"
    absent.write_text("from,to\na_1.jpg,a_2.jpg\na_2.jpg,zz_9.jpg\nyy_1.jpg,a_1.jpg\n")
    with pytest.raises(DataFormatError) as err:
        read_pairs(absent, ann)
    msg = str(err.value)
    assert msg.startswith(f"{absent}:3: image 'zz_9.jpg' (column 'to') is not in the annotation")
    assert str(ann.path) in msg and "zz_9.jpg, yy_1.jpg (2 in total)" in msg

    bad = tmp_path / "bad.csv"
    bad.write_text("from,to\na_1.jpg,a_2.jpg\na_1.jpg\n")
    with pytest.raises(DataFormatError, match=rf"^{bad}:3: expected two image names 'from,to'"):
        read_pairs(bad)
    header = tmp_path / "header.csv"
    header.write_text("source,target\na_1.jpg,a_2.jpg\n")
    with pytest.raises(DataFormatError, match=rf"^{header}:1: expected header 'from,to'"):
        read_pairs(header)


def test_missing_image_files_listed_with_count(tmp_path):
    rows = [HEADER] + [_row(f"p_{i}.jpg") for i in range(9)]
    ann = read_annotations(_write(tmp_path, rows))
    images = tmp_path / "imgs"
    images.mkdir()
    for i in (0, 4):
        (images / f"p_{i}.jpg").write_bytes(b"x")
    check_images_exist(images, ["p_0.jpg", "p_4.jpg"], ann)
    with pytest.raises(DataFormatError) as err:
        check_images_exist(images, ann.names, ann)
    msg = str(err.value)
    assert msg.startswith(f"{images}: 7 of 9 image files named in {ann.path} do not exist")
    assert "p_1.jpg (line 3), p_2.jpg (line 4), p_3.jpg (line 5), p_5.jpg (line 7)" in msg
    assert "(7 in total)" in msg and "p_7.jpg" not in msg
    with pytest.raises(DataFormatError, match="image folder does not exist"):
        check_images_exist(tmp_path / "nowhere", ["p_0.jpg"], ann)


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("\n".join([HEADER, _row("a_1.jpg")]) + "\n", encoding="utf-8-sig")
    assert read_annotations(path).names == ["a_1.jpg"]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("from,to\na_1.jpg,a_2.jpg\n", encoding="utf-8-sig")
    assert read_pairs(pairs).pairs == [("a_1.jpg", "a_2.jpg")]


@pytest.mark.parametrize(
    "name", ["../../outside/x.jpg", "/abs/x.jpg", "sub/x.jpg", "..", "a\\b.jpg"]
)
def test_image_names_that_leave_their_folder_are_rejected(tmp_path, name):
    path = _write(tmp_path, [HEADER, _row("ok_1.jpg"), _row(name)])
    with pytest.raises(DataFormatError, match=r"ann\.csv:3: image name .* not a plain file name"):
        read_annotations(path)
    pairs = _write(tmp_path, ["from,to", "ok_1.jpg,ok_2.jpg", f"ok_1.jpg,{name}"], "p.csv")
    with pytest.raises(DataFormatError, match=r"p\.csv:3: image name"):
        read_pairs(pairs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100000000000000000000000", "is out of range; expected a pixel coordinate in 0..65535"),
        ("-100000000000000000000000", "is out of range"),
        ("1e23", "is not an integer"),
    ],
)
def test_coordinates_out_of_range_name_the_line(tmp_path, value, expected):
    ys = str(KP_Y).replace("[11,", f"[{value},")
    path = _write(tmp_path, [HEADER, _row("a_1.jpg"), f"a_2.jpg: {ys}: {KP_X}"])
    with pytest.raises(DataFormatError, match=r"ann\.csv:3: keypoints_y\[0\] \(nose\)") as err:
        read_annotations(path)
    assert expected in str(err.value)
