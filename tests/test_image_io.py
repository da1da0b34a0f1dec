import numpy as np
import pytest
import tifffile

from conftest import write_png
from napari_nuclei.core.errors import DatasetError
from napari_nuclei.core.image_io import read_image, read_labels, read_mask


def test_rgb_png_is_read_in_rgb_order(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    out = read_image(write_png(tmp_path / "rgb.png", rgb))
    assert out.shape == (4, 5, 3)
    assert (out[..., 0] == 200).all() and (out[..., 2] == 0).all()


def test_rgba_drops_alpha(tmp_path):
    rgba = np.full((4, 5, 4), 10, np.uint8)
    rgba[..., 3] = 255
    rgba[..., 1] = 77
    out = read_image(write_png(tmp_path / "rgba.png", rgba))
    assert out.shape == (4, 5, 3)
    assert (out[..., 1] == 77).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grayscale_keeps_depth(tmp_path, dtype):
    gray = (np.arange(20).reshape(4, 5) * 1000 % np.iinfo(dtype).max).astype(dtype)
    out = read_image(write_png(tmp_path / "g.png", gray))
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, gray)


def test_tiff_image(tmp_path):
    data = np.arange(12, dtype=np.uint16).reshape(3, 4)
    tifffile.imwrite(tmp_path / "t.tif", data)
    np.testing.assert_array_equal(read_image(tmp_path / "t.tif"), data)


MASK = np.zeros((6, 7), bool)
MASK[1:4, 2:6] = True


@pytest.mark.parametrize(
    "encoded",
    [
        MASK.astype(np.uint8) * 255,  # 0/255
        MASK.astype(np.uint8),  # 0/1
        MASK.astype(np.uint16) * 65535,  # 16-bit
        np.repeat((MASK.astype(np.uint8) * 255)[..., None], 3, axis=2),  # RGB-saved
        np.dstack([MASK.astype(np.uint8) * 255] * 2 + [np.zeros_like(MASK, np.uint8)] * 2),
    ],
    ids=["0-255", "0-1", "16bit", "rgb", "rgba-transparent"],
)
def test_mask_encodings_give_the_same_foreground(tmp_path, encoded):
    np.testing.assert_array_equal(read_mask(write_png(tmp_path / "m.png", encoded)), MASK)


def test_antialiased_mask_counts_every_nonzero_pixel(tmp_path):
    encoded = MASK.astype(np.uint8) * 255
    encoded[1, 2] = 3  # faint anti-aliased edge pixel
    assert read_mask(write_png(tmp_path / "m.png", encoded))[1, 2]


def test_truncated_png_is_reported(tmp_path):
    path = write_png(tmp_path / "m.png", np.random.default_rng(0).integers(0, 255, (64, 64),
                                                                           dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated PNG") as info:
        read_mask(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content,message", [(b"", "empty file"), (b"not an image at all",
                                                                    "not a PNG file")])
def test_garbage_files_are_reported(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        read_image(path)


def test_non_png_garbage_is_unreadable(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8 garbage")
    with pytest.raises(DatasetError, match="unreadable image"):
        read_image(path)


def test_label_image_rejects_rgb_and_floats(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.full((3, 3), 0.5, np.float32))
    with pytest.raises(DatasetError, match="integers"):
        read_labels(tmp_path / "f.tif")
    write_png(tmp_path / "rgb.png", np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(DatasetError, match="single-channel"):
        read_labels(tmp_path / "rgb.png")
