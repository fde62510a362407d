"""load_image: every input kind, conversions, EXIF orientation, size caps, corrupt data."""

import io
import struct

import cv2
import numpy as np
import pytest

from cam_widget import ImageError, ImageTooLargeError, load_image
from cam_widget.imaging import image_size_from_header, resize_to


def rgb_pattern(h: int = 20, w: int = 40) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (255, 0, 0)  # red left half
    img[:, w // 2 :] = (0, 0, 255)  # blue right half
    return img


def png_bytes(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()


def test_path_bytes_filelike_and_array_agree(tmp_path):
    img = rgb_pattern()
    data = png_bytes(img)
    path = tmp_path / "p.png"
    path.write_bytes(data)
    for source in (str(path), path, data, bytearray(data), io.BytesIO(data), img):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.shape == (20, 40, 3)
        np.testing.assert_array_equal(out, img)


def test_grayscale_rgba_16bit_float_bool_arrays():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(load_image(gray)[..., 1], gray)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent -> white
    out = load_image(rgba)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, 1]) == (255, 255, 255)
    assert load_image(np.full((2, 2, 3), 65535, np.uint16)).max() == 255
    assert load_image(np.full((2, 2), 0.5, np.float32))[0, 0, 0] == 128
    assert load_image(np.full((2, 2), 200.0))[0, 0, 0] == 200
    assert load_image(np.ones((2, 2), bool))[0, 0, 0] == 255
    assert load_image(np.zeros((2, 2, 1), np.uint8)).shape == (2, 2, 3)


def test_encoded_grayscale_16bit_and_rgba_png():
    g16 = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000).astype(np.uint16)
    out = load_image(cv2.imencode(".png", g16)[1].tobytes())
    assert out.shape == (4, 4, 3) and out[3, 3, 0] == round(15 * 4000 / 257)
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2] = 255  # red in BGRA
    bgra[..., 3] = 255
    bgra[1, 1, 3] = 0
    out = load_image(cv2.imencode(".png", bgra)[1].tobytes())
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 1]) == (255, 255, 255)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


def test_exif_orientation_is_applied():
    img = rgb_pattern(20, 40)
    jpeg = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    plain = load_image(jpeg)
    assert plain.shape == (20, 40, 3) and plain[10, 2, 0] > 200  # red on the left
    rotated = load_image(_with_exif_orientation(jpeg, 6))  # "rotate 90 CW to display"
    assert rotated.shape == (40, 20, 3)
    assert rotated[2, 10, 0] > 200 and rotated[37, 10, 2] > 200  # red now on top, blue at the bottom


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, b"\xff\xd8\xff" + b"\x00" * 10])
def test_corrupt_and_empty_bytes(data):
    with pytest.raises(ImageError):
        load_image(data)


def test_truncated_png_is_refused():
    data = png_bytes(rgb_pattern(64, 64))
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 3])


def test_header_reports_sizes_and_bomb_is_refused_before_decoding():
    data = png_bytes(rgb_pattern(20, 40))
    assert image_size_from_header(data) == (40, 20)
    jpeg = cv2.imencode(".jpg", rgb_pattern(20, 40))[1].tobytes()
    assert image_size_from_header(jpeg) == (40, 20)
    bomb = bytearray(data)
    bomb[16:24] = struct.pack(">II", 100_000, 100_000)  # claims 10 gigapixels
    with pytest.raises(ImageTooLargeError, match="cap"):
        load_image(bytes(bomb))
    with pytest.raises(ImageTooLargeError):
        load_image(rgb_pattern(20, 40), max_pixels=100)


def test_bad_types_and_paths(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="Cannot read"):
        load_image(12345)
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ImageError, match="empty"):
        load_image(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((2, 2), np.nan))
    (tmp_path / "t.txt").write_text("hello")
    with open(tmp_path / "t.txt") as fh, pytest.raises(ImageError, match="text mode"):
        load_image(fh)


def test_resize_to():
    img = rgb_pattern(20, 40)
    assert resize_to(img, (10, 20)).shape == (10, 20, 3)
    assert resize_to(img, (40, 80)).shape == (40, 80, 3)
    assert resize_to(img, (20, 40)) is img
