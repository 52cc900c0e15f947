"""Data sets in torchvision's on-disk layout, and the error that names missing data files."""

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mixup_robust.data.base import InMemoryDataModule


def missing_files_error(owner: str, missing: Sequence[Path | str], hint: str) -> FileNotFoundError:
    """A FileNotFoundError that names the missing paths and says how to provide them."""
    shown = ", ".join(str(path) for path in missing[:5])
    more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
    return FileNotFoundError(f"{owner}: missing {shown}{more}. {hint}")


class TorchvisionFormatDataModule(InMemoryDataModule):
    """A data set in torchvision's on-disk layout under `root`, optionally downloaded.

    With `download` true, `prepare_data` (or the first load) fetches missing files through
    the torchvision data set class `torchvision_name`; otherwise missing files raise a
    FileNotFoundError that names them. The files are read directly (no checksum check), so
    copies placed by hand work too.
    """

    torchvision_name: str
    download_url: str
    download: bool = False

    @abc.abstractmethod
    def required_files(self, split: str) -> list[Path]:
        """The files that `load_split(split)` reads."""

    def download_calls(self) -> list[dict[str, Any]]:
        """Keyword arguments of the torchvision constructor calls that fetch the files."""
        return [{"train": False}]

    def _missing(self, splits: tuple[str, ...] = ("train", "test")) -> list[Path]:
        return [
            path for split in splits for path in self.required_files(split) if not path.is_file()
        ]

    def prepare_data(self) -> None:
        """Downloads the data set when `download` is true and files are missing."""
        if not self.download or not self._missing():
            return
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, self.torchvision_name)
        for kwargs in self.download_calls():
            try:
                dataset_class(self.root, download=True, **kwargs)
            except Exception as error:
                raise RuntimeError(
                    f"{type(self).__name__}: downloading {self.torchvision_name} from "
                    f"{self.download_url} into {self.root} failed ({type(error).__name__}: "
                    f"{error}). Without network access, place these files by hand: "
                    f"{', '.join(str(path) for path in self._missing())}."
                ) from error

    def check_files(self, split: str) -> list[Path]:
        """Downloads if asked, then returns the split's files or raises FileNotFoundError."""
        self.prepare_data()
        missing = self._missing((split,))
        if missing:
            raise missing_files_error(
                type(self).__name__,
                missing,
                f"Set `download: true` to fetch them with torchvision, or place torchvision's "
                f"layout there by hand (from {self.download_url}).",
            )
        return self.required_files(split)
