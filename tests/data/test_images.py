"""Image loading: RGB conversion, size policy (crop / resize), corrupt files, label maps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from personpose.data.annotations import DataFormatError, read_annotations
from personpose.data.dataset import CropWarning, fit_annotations
from personpose.data.images import SizePolicy, load_image, load_label_map, to_rgb

SMALL = SizePolicy.create((6, 4))


def _ramp(h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 with R = column, G = row, B = 200."""
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([cols, rows, np.full_like(rows, 200)], -1).astype(np.uint8)


def test_rgb_file_to_tensor_in_minus_one_one(tmp_path):
    arr = _ramp(6, 4)
    arr[0, 0] = (0, 255, 0)
    Image.fromarray(arr).save(tmp_path / "a.png")
    t = load_image(tmp_path / "a.png", SMALL)
    assert t.shape == (3, 6, 4) and t.dtype == torch.float32
    expected = torch.from_numpy(arr).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(t, expected, rtol=0, atol=0)
    assert t[0, 0, 0] == -1.0 and t[1, 0, 0] == 1.0


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "P-transparent", "I;16", "CMYK", "1"])
def test_modes_become_rgb(tmp_path, mode):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (6, 4), dtype=np.uint8)
    if mode == "L":
        img, want = Image.fromarray(gray, "L"), np.repeat(gray[..., None], 3, -1)
    elif mode == "LA":
        img = Image.fromarray(np.stack([gray, np.full_like(gray, 7)], -1), "LA")
        want = np.repeat(gray[..., None], 3, -1)
    elif mode == "RGBA":
        rgb = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
        img = Image.fromarray(np.concatenate([rgb, np.zeros((6, 4, 1), np.uint8)], -1), "RGBA")
        want = rgb  # alpha is dropped, colours kept
    elif mode in ("P", "P-transparent"):
        palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
        img = Image.fromarray(gray, "P")
        img.putpalette(palette.reshape(-1).tolist())
        if mode == "P-transparent":
            img.info["transparency"] = 3
        want = palette[gray]
    elif mode == "I;16":
        wide = gray.astype(np.uint16) * 257
        img = Image.fromarray(wide)  # mode I;16 (16-bit grayscale)
        assert img.mode == "I;16"
        want = np.repeat(gray[..., None], 3, -1)
    elif mode == "CMYK":
        img = Image.fromarray(np.repeat(gray[..., None], 3, -1), "RGB").convert("CMYK")
        want = np.repeat(gray[..., None], 3, -1)
    else:  # 1-bit
        img = Image.fromarray(gray > 127).convert("1")
        want = np.repeat(np.where(gray > 127, 255, 0)[..., None], 3, -1).astype(np.uint8)
    ext = "tif" if mode in ("CMYK",) else "png"
    path = tmp_path / f"x.{ext}"
    img.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. PIL's palette-transparency warning
        loaded = to_rgb(Image.open(path))
    assert loaded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(loaded), want)
    assert load_image(path, SMALL).shape == (3, 6, 4)


def test_wrong_size_is_an_error_naming_the_file(tmp_path):
    Image.fromarray(_ramp(8, 4)).save(tmp_path / "big.png")
    with pytest.raises(DataFormatError) as err:
        load_image(tmp_path / "big.png", SMALL)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'big.png'}: image is 8x4 (HxW), expected 6x4")
    assert "center_crop" in msg


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(DataFormatError, match=rf"^{tmp_path / 'junk.jpg'}: unreadable or corrupt"):
        load_image(tmp_path / "junk.jpg", SMALL)
    Image.fromarray(_ramp(6, 4)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=rf"^{tmp_path / 'cut.jpg'}: unreadable or corrupt"):
        load_image(tmp_path / "cut.jpg", SMALL)
    with pytest.raises(DataFormatError, match="image file does not exist"):
        load_image(tmp_path / "absent.png", SMALL)


def test_decompression_bomb_is_an_error_naming_the_file(tmp_path, monkeypatch):
    Image.fromarray(_ramp(64, 32)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x32 > 2 x 100 px: PIL's bomb error
    with pytest.raises(DataFormatError, match=rf"^{tmp_path / 'huge.png'}: image is far larger"):
        load_image(tmp_path / "huge.png", SMALL)


def test_policy_validation():
    with pytest.raises(ValueError, match="set fit to 'center_crop' or 'resize'"):
        SizePolicy.create((256, 176), (256, 256))
    with pytest.raises(ValueError, match="cannot enlarge"):
        SizePolicy.create((256, 256), (256, 176), "center_crop")
    with pytest.raises(ValueError, match="fit must be one of"):
        SizePolicy.create((8, 8), None, "stretch")
    with pytest.raises(ValueError, match="image_size must be"):
        SizePolicy.create((8,))
    assert SizePolicy.create([256, 176], None, None).fit == "none"


def test_center_crop_256_to_176_shifts_x_by_40(tmp_path):
    policy = SizePolicy.create((256, 176), (256, 256), "center_crop")
    assert policy.crop_offset == (0, 40)
    Image.fromarray(_ramp(256, 256)).save(tmp_path / "sq.png")
    t = load_image(tmp_path / "sq.png", policy)
    assert t.shape == (3, 256, 176)
    cols = torch.round((t[0, 0] + 1) * 127.5)
    torch.testing.assert_close(cols, torch.arange(40, 216, dtype=torch.float32))
    kp = -np.ones((2, 18, 2), np.int64)
    kp[0, 0] = (10, 40)  # first kept column -> x = 0
    kp[0, 1] = (20, 215)  # last kept column -> x = 175
    kp[0, 2] = (30, 39)  # left of the crop -> -1
    kp[1, 3] = (255, 216)  # right of the crop -> -1
    out, lost = policy.keypoints(kp)
    assert out[0, 0].tolist() == [10, 0] and out[0, 1].tolist() == [20, 175]
    assert out[0, 2].tolist() == [-1, -1] and out[1, 3].tolist() == [-1, -1]
    assert lost.sum() == 2 and lost[0, 2] and lost[1, 3]
    assert (out[0, 3:] == -1).all()


def test_resize_policy(tmp_path):
    policy = SizePolicy.create((128, 64), (256, 128), "resize")
    Image.fromarray(np.full((256, 128, 3), 90, np.uint8)).save(tmp_path / "r.png")
    t = load_image(tmp_path / "r.png", policy)
    assert t.shape == (3, 128, 64)
    torch.testing.assert_close(t, torch.full_like(t, 90 / 127.5 - 1))
    kp = np.array([[[0, 0], [255, 127], [100, 51], [-1, -1]] + [[-1, -1]] * 14])
    out, lost = policy.keypoints(kp)
    # pixel centres: (v + 0.5) * 0.5 - 0.5, rounded half to even
    assert out[0, :4].tolist() == [[0, 0], [127, 63], [50, 25], [-1, -1]]
    assert not lost.any()


def test_label_map_nearest_and_crop(tmp_path):
    labels = np.tile(np.arange(8, dtype=np.uint8), (4, 1))  # (4, 8): label = column
    Image.fromarray(labels, "L").save(tmp_path / "l.png")
    exact = load_label_map(tmp_path / "l.png", SizePolicy.create((4, 8)))
    assert exact.dtype == torch.int64 and exact.shape == (4, 8)
    torch.testing.assert_close(exact, torch.from_numpy(labels.astype(np.int64)))
    crop = load_label_map(tmp_path / "l.png", SizePolicy.create((4, 4), (4, 8), "center_crop"))
    assert crop[0].tolist() == [2, 3, 4, 5]
    half = load_label_map(tmp_path / "l.png", SizePolicy.create((2, 4), (4, 8), "resize"))
    assert set(half.unique().tolist()) <= set(range(8))  # nearest: no blended labels
    Image.fromarray(np.zeros((4, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataFormatError, match="expected a single-channel"):
        load_label_map(tmp_path / "rgb.png", SizePolicy.create((4, 8)))


def test_real_images_load(real_data):
    market = real_data / "market" / "test" / "0001_c3s1_000551_03.jpg"
    t = load_image(market, SizePolicy.create((128, 64)))
    assert t.shape == (3, 128, 64) and -1 <= t.min() < t.max() <= 1
    fashion = next((real_data / "deepfashion" / "test").glob("*.jpg"))
    assert load_image(fashion, SizePolicy.create((256, 176))).shape == (3, 256, 176)
    with pytest.raises(DataFormatError, match="image is 256x176 \\(HxW\\), expected 256x256"):
        load_image(fashion, SizePolicy.create((256, 256)))


def test_deepfashion_crop_of_the_standard_list_matches_the_resize_annotation(real_data):
    """256x256 test annotations cropped to 176 wide: 19 joints leave the frame (one warning),
    and the result equals the published 256x176 keypoints of the sample images."""
    full = read_annotations(real_data / "annotations" / "fasion-annotation-test.csv", (256, 256))
    policy = SizePolicy.create((256, 176), (256, 256), "center_crop")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cropped = fit_annotations(full, policy)
    crop_warnings = [w for w in caught if issubclass(w.category, CropWarning)]
    assert len(crop_warnings) == 1
    msg = str(crop_warnings[0].message)
    assert "puts 19 joints of" in msg and "fasion-annotation-test.csv" in msg
    published = read_annotations(
        real_data / "deepfashion" / "fasion-resize-annotation-test.csv", (256, 176)
    )
    assert len(published) == 376
    for name in published.names:
        np.testing.assert_array_equal(cropped[name], published[name], err_msg=name)
