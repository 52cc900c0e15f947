"""Class-folder images (`train/<class>/*`, `test/<class>/*`) from a folder or a `.zip` file."""

import io
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from typing_extensions import override

from mixup_robust.data.base import Arrays, InMemoryDataModule

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SPLITS = ("train", "test")

# split -> class name -> image paths relative to the folder or zip, sorted.
Listing = dict[str, dict[str, list[str]]]


def decode_images(
    names: Sequence[str],
    read: Callable[[str], bytes],
    shape: tuple[int, int, int],
    source: str,
    resize: bool = False,
    size_hint: str = "",
) -> torch.Tensor:
    """Decodes image files with PIL in a thread pool into one uint8 (N, C, H, W) tensor.

    Args:
        names: the files to decode, in output order.
        read: returns the raw bytes of a name (a file path or a zip member).
        shape: (C, H, W) of every output image; C is 1 (grayscale) or 3 (RGB).
        source: where the names live, for error messages.
        resize: resize each image to (H, W) (bilinear) instead of requiring that size.
        size_hint: appended to the error message of an image of another size.

    Raises:
        ValueError: an image cannot be decoded, or has another size and `resize` is false.
    """
    channels, height, width = shape
    mode = {1: "L", 3: "RGB"}[channels]
    out = np.empty((len(names), channels, height, width), dtype=np.uint8)

    def decode_one(position: int) -> None:
        name = names[position]
        try:
            with Image.open(io.BytesIO(read(name))) as image:
                image = image.convert(mode)
                if resize and image.size != (width, height):
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(image)
        except Exception as error:
            raise ValueError(f"Cannot decode image {name} in {source}: {why(error)}") from None
        if pixels.shape[:2] != (height, width):
            raise ValueError(
                f"Image {name} in {source} is {pixels.shape[1]}x{pixels.shape[0]} (WxH), "
                f"expected {width}x{height}.{size_hint}"
            )
        out[position] = pixels.reshape(height, width, channels).transpose(2, 0, 1)

    with ThreadPoolExecutor() as pool:
        try:
            for _ in pool.map(decode_one, range(len(names))):
                pass
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # fail fast, skip the rest
            raise
    return torch.from_numpy(out)


def why(error: Exception) -> str:
    """What went wrong with an image file, without PIL's `<_io.BytesIO object at 0x...>`."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image PIL can identify (another kind of file, or damaged)"
    return f"{type(error).__name__}: {error}"


def file_reader(root: Path) -> Callable[[str], bytes]:
    """A `read` for `decode_images`: the bytes of a path relative to `root`."""

    def read(name: str) -> bytes:
        return (root / name).read_bytes()

    return read


def _skipped(parts: Sequence[str]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _group(paths: Sequence[str], prefix: str, folders: Sequence[str] = ()) -> Listing:
    """Groups `<prefix><split>/<class>/.../<file>` paths by split and class.

    `folders` are `<prefix><split>/<class>` folders; one without images is listed empty.
    """
    listing: Listing = {split: {} for split in SPLITS}
    for folder in folders:
        parts = folder[len(prefix) :].strip("/").split("/")
        if folder.startswith(prefix) and len(parts) == 2 and parts[0] in SPLITS:
            if not _skipped(parts):
                listing[parts[0]].setdefault(parts[1], [])
    for path in paths:
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        if len(parts) < 3 or parts[0] not in SPLITS or _skipped(parts):
            continue
        if os.path.splitext(parts[-1])[1].lower() in IMAGE_EXTENSIONS:
            listing[parts[0]].setdefault(parts[1], []).append(path)
    for classes in listing.values():
        for files in classes.values():
            files.sort()
    return listing


def _find_prefix(top_dirs: set[str], has_splits: Callable[[str], bool], root: Path) -> str:
    """'' when train/ and test/ sit at the top, else the one top-level folder holding them."""
    if has_splits(""):
        return ""
    found = sorted(name for name in top_dirs if not _skipped([name]) and has_splits(f"{name}/"))
    if len(found) != 1:
        where = f"several top-level folders ({', '.join(found)})" if found else "none"
        raise FileNotFoundError(
            f"ImageFolderDataModule: {root} must hold train/<class>/* and test/<class>/* "
            f"image files, at its top or under one top-level folder; found {where}."
        )
    return f"{found[0]}/"


@contextmanager
def open_archive(root: Path) -> Iterator[zipfile.ZipFile | None]:
    """The opened zip file when `root` is a file, else None (a folder)."""
    if not root.is_file():
        yield None
        return
    if not zipfile.is_zipfile(root):
        with open(root, "rb") as file:
            starts_like_zip = file.read(4) == b"PK\x03\x04"
        if starts_like_zip:  # the local headers are there, the central directory is not
            raise ValueError(
                f"ImageFolderDataModule: {root} is a damaged or truncated .zip archive (its end "
                "is missing: an interrupted download or copy). Copy or download it again."
            )
        raise ValueError(
            f"ImageFolderDataModule: {root} is a file but not a .zip archive; set root to a "
            "folder with train/ and test/, or to a .zip of one."
        )
    try:
        with zipfile.ZipFile(root) as archive:
            yield archive
    except zipfile.BadZipFile as error:  # a member that fails its CRC or header check
        raise ValueError(
            f"ImageFolderDataModule: {root} is a damaged .zip archive ({error}). Copy or "
            "download it again."
        ) from None


def list_image_folder(root: Path, archive: zipfile.ZipFile | None = None) -> Listing:
    """Lists the images of a class-folder data set in the folder `root` or in `archive`."""
    if archive is not None:
        names = [name for name in archive.namelist() if not name.endswith("/")]
        dirs = {name.split("/", 1)[0] for name in names if "/" in name}
        members = {name.rsplit("/", 1)[0] + "/" for name in names if "/" in name}

        def has_splits(prefix: str) -> bool:
            return all(
                any(member.startswith(f"{prefix}{split}/") for member in members)
                for split in SPLITS
            )

        folders = [name for name in archive.namelist() if name.endswith("/")]
        return _group(names, _find_prefix(dirs, has_splits, root), folders)
    if not root.is_dir():
        raise FileNotFoundError(
            f"ImageFolderDataModule: {root} does not exist. Set root to a folder or a .zip "
            "file holding train/<class>/* and test/<class>/* images."
        )
    dirs = {entry.name for entry in os.scandir(root) if entry.is_dir()}
    prefix = _find_prefix(
        dirs, lambda p: all((root / p / split).is_dir() for split in SPLITS), root
    )
    paths, folders = [], []
    for split in SPLITS:
        for folder, subfolders, files in os.walk(root / prefix / split):
            relative = Path(folder).relative_to(root).as_posix()
            paths.extend(f"{relative}/{name}" for name in files)
            folders.extend(f"{relative}/{name}" for name in subfolders)
    return _group(paths, prefix, folders)


def check_no_empty_class(listing: Listing, root: str) -> None:
    """Raises when a class folder holds no image: it would shift every later class's label."""
    empty = [f"{split}/{name}" for split in SPLITS for name, files in listing[split].items()
             if not files]  # fmt: skip
    if empty:
        raise ValueError(
            f"ImageFolderDataModule: class folder(s) {', '.join(sorted(empty))} in {root} hold "
            f"no image file ({', '.join(sorted(IMAGE_EXTENSIONS))}). Classes are numbered in "
            "sorted folder order, so dropping one would shift the labels of the classes after "
            "it. Add its images, or remove the folder from both train/ and test/."
        )


class ImageFolderDataModule(InMemoryDataModule):
    """Images in class folders, `train/<class>/*` and `test/<class>/*`, read without extracting.

    `root` is a folder or a `.zip` file; train/ and test/ may sit at its top or under one
    top-level folder (as in `cifar10-jpeg.zip`). Class indices follow the sorted class-folder
    names (`class_names`), which must be the same in train and test. `num_classes` and
    `image_shape` are known after `__init__` (which only lists files and reads one image
    header); the pixels are decoded on first use, with PIL in a thread pool. Hidden files,
    `__MACOSX/` and files without an image extension are ignored.

    Args:
        image_size: resize every image to image_size x image_size (bilinear, aspect ratio not
            kept); None requires all images to share the first training image's size.
        channels: 3 for RGB, 1 for grayscale.
        limit_per_class: read at most this many images per class and split, the first in
            sorted file-name order (for quick runs); None reads all.
    """

    def __init__(
        self,
        root: str = "data",
        image_size: int | None = None,
        channels: int = 3,
        limit_per_class: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}.")
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size must be at least 1, not {image_size}.")
        if limit_per_class is not None and limit_per_class < 1:
            raise ValueError(f"limit_per_class must be at least 1, not {limit_per_class}.")
        self.image_size = image_size
        self.channels = channels
        self.limit_per_class = limit_per_class
        with open_archive(Path(root)) as archive:
            self.listing = list_image_folder(Path(root), archive)
            check_no_empty_class(self.listing, root)
            train, test = (sorted(self.listing[split]) for split in SPLITS)
            if not train:
                raise FileNotFoundError(f"ImageFolderDataModule: no train/<class>/* in {root}.")
            if train != test:
                raise ValueError(
                    f"ImageFolderDataModule: train and test of {root} have different class "
                    f"folders: only in train: {sorted(set(train) - set(test))}, "
                    f"only in test: {sorted(set(test) - set(train))}."
                )
            if image_size is None:  # the first training image sets the size
                first = self.listing["train"][train[0]][0]
                read = archive.read if archive else file_reader(Path(root))
                try:
                    with Image.open(io.BytesIO(read(first))) as image:
                        width, height = image.size
                except Exception as error:
                    raise ValueError(f"Cannot read image {first} in {root}: {why(error)}") from None
            else:
                width = height = image_size
        self.class_names: list[str] = train
        self.num_classes = len(train)
        self.image_shape = (channels, height, width)

    def files(self, split: str) -> list[tuple[str, int]]:
        """(path relative to root, class index) of the images of a split, limit applied."""
        return [
            (name, label)
            for label, class_name in enumerate(self.class_names)
            for name in self.listing[split][class_name][: self.limit_per_class]
        ]

    @override
    def load_split(self, split: str) -> Arrays:
        files = self.files(split)
        names = [name for name, _ in files]
        labels = torch.tensor([label for _, label in files], dtype=torch.int64)
        root = Path(self.root)
        with open_archive(root) as archive:  # zipfile reads members thread-safely
            read = archive.read if archive else file_reader(root)
            hint = " Set image_size to resize all images to one size."
            images = decode_images(
                names, read, self.image_shape, str(root), self.image_size is not None, hint
            )
        return images, labels
