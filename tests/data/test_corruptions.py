"""Common-corruption data in the CIFAR-10-C and Tiny-ImageNet-C layouts."""

import pytest
import torch
from PIL import Image

from mixup_robust.data import list_corruptions, load_corruption
from tests.helpers.corruptions import LABELS, N, correctness, fake_cifar_c


def test_the_loader_reads_each_severity_slice_and_its_labels(tmp_path):
    root = fake_cifar_c(tmp_path / "CIFAR-10-C")
    assert list_corruptions(root) == ["gaussian_noise", "snow"]
    for severity in (1, 3, 5):
        images, labels = load_corruption(root, "snow", severity, (3, 4, 4))
        rows = slice((severity - 1) * N, severity * N)
        assert images.dtype == torch.uint8 and images.shape == (N, 3, 4, 4)
        assert labels.dtype == torch.int64 and labels.tolist() == LABELS[rows].tolist()
        expected = LABELS[rows] + ~correctness("snow")[severity - 1]
        assert images[:, :, 1, 2].tolist() == [[int(v)] * 3 for v in expected]


def test_missing_files_and_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"labels.npy"):
        list_corruptions(tmp_path / "absent")
    root = fake_cifar_c(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match=r"fog.npy"):
        load_corruption(root, "fog", 1, (3, 4, 4))
    with pytest.raises(ValueError, match="severities are 1 to 5"):
        load_corruption(root, "snow", 6, (3, 4, 4))
    with pytest.raises(ValueError, match="expected"):
        load_corruption(root, "snow", 1, (3, 32, 32))
    (root / "labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"labels.npy"):
        load_corruption(root, "snow", 1, (3, 4, 4))


def test_the_folder_layout_of_tiny_imagenet_c(tmp_path):
    wnids = ["n01443537", "n01629819", "n01641577"]
    for severity in (1, 2):
        for label, wnid in enumerate(wnids):
            folder = tmp_path / "fog" / str(severity) / wnid
            folder.mkdir(parents=True)
            for copy in range(2):
                value = 40 * label + 10 * severity + copy
                image = Image.new("RGB", (8, 8), (value, value, value))
                image.save(folder / f"val_{copy}.JPEG", quality=100)
    assert list_corruptions(tmp_path) == ["fog"]
    images, labels = load_corruption(tmp_path, "fog", 2, (3, 8, 8))
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    expected = torch.tensor([40 * (i // 2) + 20 + i % 2 for i in range(6)])
    assert (images[:, 0, 3, 3].long() - expected).abs().max() <= 2
