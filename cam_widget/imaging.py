"""Reading images: anything a user holds -> RGB uint8 ``(h, w, 3)``.

OpenCV decodes (and applies EXIF orientation); its BGR order is turned into RGB right here, at
the border, so the rest of cam-widget only ever sees RGB.  Sizes are bounded *before* decoding
where the header tells them (PNG, JPEG, GIF, BMP, WebP), so a decompression bomb is refused
without allocating it.  Pure numpy/OpenCV: no TensorFlow, no widgets.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Union

import cv2
import numpy as np

from .errors import ImageError, ImageTooLargeError

__all__ = ["MAX_BYTES", "MAX_PIXELS", "ImageSource", "image_size_from_header", "load_image", "resize_to"]

#: Images with more pixels than this are refused (50 megapixels, ~150 MB as RGB uint8).
MAX_PIXELS = 50_000_000
#: Encoded files larger than this are refused before reading them whole.
MAX_BYTES = 100 * 2**20

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray]


def load_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return ``source`` as a C-contiguous RGB uint8 array ``(h, w, 3)``.

    ``source`` may be a path, encoded bytes (PNG, JPEG, WebP, BMP, TIFF, ...), a binary
    file-like object, or a numpy array.  Arrays are taken as RGB(A) or grayscale; uint16 is
    scaled by 1/257, floats are read as [0, 1] (or [0, 255] when the maximum exceeds 1) and
    clipped, bool becomes 0/255, RGBA is composited over white.  Encoded images have their EXIF
    orientation applied.  Raises :class:`ImageError` (corrupt, empty, unsupported) or
    :class:`ImageTooLargeError` (more than ``max_pixels``).
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), "the given bytes", max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"Image file not found: {str(path)!r}. Check the path (relative to {os.getcwd()!r}).")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ImageTooLargeError(
                f"Image file {str(path)!r} is {size / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB. "
                "Downscale it first."
            )
        return _decode(path.read_bytes(), repr(str(path)), max_pixels)
    if hasattr(source, "read"):
        data = source.read(MAX_BYTES + 1)
        if isinstance(data, str):
            raise ImageError("The file object was opened in text mode; open it with 'rb'.")
        if len(data) > MAX_BYTES:
            raise ImageTooLargeError(f"The image stream exceeds {MAX_BYTES // 2**20} MB; downscale it first.")
        return _decode(bytes(data), "the file object", max_pixels)
    raise ImageError(
        f"Cannot read an image from {type(source).__name__}. Pass a path, bytes, a binary file object "
        "or a numpy array (h, w[, 3|4])."
    )


def _check_pixels(h: int, w: int, what: str, max_pixels: int) -> None:
    if h * w > max_pixels:
        raise ImageTooLargeError(
            f"Image {what} is {w}x{h} = {h * w / 1e6:.1f} MP, above the cap of {max_pixels / 1e6:.0f} MP. "
            "Downscale it first, or pass max_pixels= if you really mean it."
        )


def image_size_from_header(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` read from a PNG/JPEG/GIF/BMP/WebP header, or ``None`` if unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if data[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", data[6:10])
            return w, h
        if data[:2] == b"BM":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return w, h
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _decode(data: bytes, what: str, max_pixels: int) -> np.ndarray:
    if not data:
        raise ImageError(f"Image {what} is empty (0 bytes).")
    size = image_size_from_header(data)
    if size is not None:
        _check_pixels(size[1], size[0], what, max_pixels)
    buf = np.frombuffer(data, np.uint8)
    # JPEG: decode to colour with EXIF orientation applied.  Others: keep alpha and bit depth.
    is_jpeg = data[:2] == b"\xff\xd8"
    flags = (cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if is_jpeg else cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise ImageError(f"Image {what} could not be decoded ({exc.err.strip()}); the file may be corrupt.") from None
    if img is None or img.size == 0:
        raise ImageError(
            f"Image {what} could not be decoded: not an image format OpenCV reads (PNG, JPEG, WebP, BMP, TIFF), "
            "or the file is corrupt or truncated."
        )
    if not is_jpeg and img.ndim == 3 and img.shape[2] in (3, 4):
        # IMREAD_UNCHANGED ignores EXIF orientation; re-decode non-alpha images to honour it.
        if img.shape[2] == 3:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
        img = img[..., [2, 1, 0, 3]] if img.shape[2] == 4 else img[..., ::-1]
    elif img.ndim == 3 and img.shape[2] == 3:
        img = img[..., ::-1]
    return _from_array(img, max_pixels, what)


def _from_array(arr: np.ndarray, max_pixels: int, what: str = "array") -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(
            f"Image {what} has shape {a.shape}; expected (h, w) grayscale, (h, w, 3) RGB or (h, w, 4) RGBA."
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"Image {what} is empty (shape {a.shape}).")
    _check_pixels(a.shape[0], a.shape[1], what, max_pixels)
    a = _to_uint8(a, what)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        a = np.rint(a[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(a)


def _to_uint8(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return np.rint(a / 257.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        f = a.astype(np.float32)
        if not np.all(np.isfinite(f)):
            raise ImageError(f"Image {what} contains NaN or infinite values.")
        scale = 255.0 if f.size and float(f.max()) <= 1.0 else 1.0
        return np.clip(np.rint(f * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(a, 0, 255).astype(np.uint8)
    raise ImageError(f"Image {what} has dtype {a.dtype}; use uint8, uint16, float or bool pixels.")


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an image to ``size=(height, width)``: area averaging when shrinking, bicubic when growing."""
    h, w = int(size[0]), int(size[1])
    if image.shape[:2] == (h, w):
        return image
    shrinking = h * w < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)

