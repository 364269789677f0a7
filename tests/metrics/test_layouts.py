"""Each layout parses; a malformed name is an error that names the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from personpose.metrics.layouts import LayoutError, load_pair, parse_name, scan, strip_panels

PEERS = {
    ("deform", "DeepFashion"): (256, 256),
    ("deform", "Market1501"): (128, 64),
    ("vunet", "DeepFashion"): (256, 256),
    ("vunet", "Market1501"): (128, 64),
}


def test_parse_each_layout():
    assert parse_name("a.jpg___b.jpg_vis.jpg", "vunet") == ("a.jpg", "b.jpg")
    assert parse_name("a.jpg___b.jpg_vis.png", "patn") == ("a.jpg", "b.jpg")
    assert parse_name("0007_c2s3_070952_01.jpg_0007_c3s3_077419_03.jpg.png", "deform") == (
        "0007_c2s3_070952_01.jpg",
        "0007_c3s3_077419_03.jpg",
    )
    assert parse_name("x_1front_2_x_2side_vis.png", "gfla") == ("x_1front", "x_2side")
    assert parse_name("a.jpg___b.jpg.png", "single") == ("a.jpg", "b.jpg")
    assert parse_name("b.jpg", "single", names={"b.jpg"}) == (None, "b.jpg")


def test_names_resolve_the_ambiguous_deform_split():
    names = {"0001_c1_01.jpg", "0001_c2_02.jpg", "0001_c1"}
    # without extensions in the file name only the annotation names can split it
    assert parse_name("0001_c1_01_0001_c2_02.png", "deform", names=names) == (
        "0001_c1_01.jpg",
        "0001_c2_02.jpg",
    )
    with pytest.raises(LayoutError, match="0001_c1_01_0001_c2_02.png"):
        parse_name("0001_c1_01_0001_c2_02.png", "deform")
    with pytest.raises(LayoutError, match="x_0001_c2_02.png: no split"):
        parse_name("x_0001_c2_02.png", "deform", names=names)


@pytest.mark.parametrize(
    "fname,layout",
    [
        ("a.jpg_b.jpg.png", "vunet"),
        ("a.jpg__b.jpg_vis.jpg", "vunet"),
        ("ab.png", "deform"),
        ("a_to_b_vis.png", "gfla"),
        ("a_2_b.png", "gfla"),
    ],
)
def test_malformed_names_name_the_file(fname, layout):
    with pytest.raises(LayoutError, match=fname.replace(".", r"\.")):
        parse_name(f"/some/dir/{fname}", layout)


def test_panel_count_from_shape():
    assert strip_panels(192, 128, None, "f") == 3  # Market 3 x 64
    assert strip_panels(320, 128, None, "f") == 5  # Market 5 x 64 (PATN)
    assert strip_panels(528, 256, None, "f") == 3  # DeepFashion 3 x 176
    assert strip_panels(880, 256, None, "f") == 5
    assert strip_panels(768, 256, None, "f") == 3  # DeepFashion 3 x 256
    with pytest.raises(LayoutError, match="f: cannot tell"):
        strip_panels(700, 256, None, "f")
    with pytest.raises(LayoutError, match="cannot hold 5 panels"):
        strip_panels(768, 256, 5, "f")


@pytest.mark.parametrize("method,dataset", sorted(PEERS))
def test_real_peer_folders_parse(real_data, method, dataset):
    folder = real_data / "peer_outputs" / method / dataset
    files = scan(folder, method)
    assert len(files) == 100
    prov = "fashion" if dataset == "DeepFashion" else "market"
    lines = (real_data / f"sample_provenance_{prov}.csv").read_text().splitlines()[1:]
    # the provenance file says which strip's panels 0 and 1 are which images
    panel = {}
    for line in lines:
        fields = line.split(",")
        panel[(fields[-2], int(fields[-1]))] = fields[0]
    for f in files:
        if (f.path.name, 0) in panel:
            assert panel[(f.path.name, 0)] == f.source_name
        if (f.path.name, 1) in panel:
            assert panel[(f.path.name, 1)] == f.target_name
    pair = load_pair(files[0])
    assert pair.pred.shape == pair.target.shape == pair.source.shape == (*PEERS[method, dataset], 3)


def test_five_panel_strip_and_single_layout(tmp_path):
    rng = np.random.default_rng(0)
    panels = [rng.integers(0, 255, (128, 64, 3), dtype=np.uint8) for _ in range(5)]
    strips = tmp_path / "strips"
    strips.mkdir()
    Image.fromarray(np.concatenate(panels, 1)).save(strips / "a.jpg___b.jpg_vis.png")
    pair = load_pair(scan(strips, "patn")[0])
    assert (pair.source == panels[0]).all() and (pair.target == panels[2]).all()
    assert (pair.pred == panels[4]).all()

    gen, gt = tmp_path / "gen", tmp_path / "gt"
    gen.mkdir()
    gt.mkdir()
    Image.fromarray(panels[0]).save(gen / "a.jpg___b.jpg.png")
    Image.fromarray(panels[1]).save(gt / "b.jpg.png")
    Image.fromarray(panels[2]).save(gt / "a.jpg")
    with pytest.raises(LayoutError, match="give gt_dir"):
        scan(gen, "single")
    (gt / "b.jpg.png").rename(gt / "b.png")  # found by its stem with another extension
    item = scan(gen, "single", gt_dir=gt)[0]
    assert item.gt_path.name == "b.png" and item.source_path.name == "a.jpg"
    pair = load_pair(item, crop=(100, 60))
    assert pair.pred.shape == (100, 60, 3) and pair.offset == (14, 2)
    (gt / "b.png").unlink()
    with pytest.raises(LayoutError, match="a.jpg___b.jpg.png: its ground truth 'b.jpg'"):
        scan(gen, "single", gt_dir=gt)


def test_sixteen_bit_images_read_as_in_training(tmp_path):
    """A 16-bit grayscale prediction or ground truth reads as its 8-bit levels, not as white."""
    gen, gt = tmp_path / "gen", tmp_path / "gt"
    gen.mkdir()
    gt.mkdir()
    levels = np.random.default_rng(1).integers(0, 256, (128, 64), dtype=np.uint16)
    Image.fromarray(levels * 257).save(gen / "a.jpg___b.jpg.png")  # 16-bit PNG
    Image.fromarray(levels.astype(np.uint8)).save(gt / "b.png")
    pair = load_pair(scan(gen, "single", gt_dir=gt)[0])
    expected = np.repeat(levels.astype(np.uint8)[..., None], 3, -1)
    assert (pair.pred == expected).all() and (pair.target == expected).all()


def test_unreadable_image_names_the_file(tmp_path):
    gen, gt = tmp_path / "gen", tmp_path / "gt"
    gen.mkdir()
    gt.mkdir()
    (gen / "a.jpg___b.jpg.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((8, 4, 3), np.uint8)).save(gt / "b.png")
    with pytest.raises(ValueError, match=r"a\.jpg___b\.jpg\.png: unreadable or corrupt"):
        load_pair(scan(gen, "single", gt_dir=gt)[0])
