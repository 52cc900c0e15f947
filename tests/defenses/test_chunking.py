"""Default chunk sizes of the defenses, picked from the device's (mocked) free memory."""

import pytest
import torch

from mixup_robust.defenses import MixupInference
from mixup_robust.defenses.chunking import CPU_CHUNK_SIZE, default_chunk_size
from mixup_robust.defenses.pool import ClassPool
from mixup_robust.nets import SmallCNN

GIB = 2**30


@pytest.mark.parametrize(
    ("free_gib", "expected"),
    [(80, 6784), (8, 640), (0.1, 64), (4000, 32768)],  # 80 GiB * 0.25 / 3 MiB = 6826 -> 6784
)
def test_cuda_chunk_follows_free_memory(monkeypatch, free_gib, expected):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (int(free_gib * GIB), 0))
    chunk = default_chunk_size(torch.device("cuda", 0), (3, 32, 32))
    assert chunk == expected and chunk % 64 == 0
    # The chunk's assumed peak stays within a quarter of the free memory (unless clamped).
    assert chunk * 1024 * 3072 <= 0.25 * free_gib * GIB or chunk == 64


def test_cpu_chunk_is_fixed_and_tiny_images_get_bigger_chunks(monkeypatch):
    assert default_chunk_size(torch.device("cpu"), (3, 32, 32)) == CPU_CHUNK_SIZE
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (8 * GIB, 0))
    small = default_chunk_size(torch.device("cuda"), (1, 8, 8))
    assert small > default_chunk_size(torch.device("cuda"), (3, 64, 64))


def test_default_chunking_gives_the_same_output_as_explicit_chunks():
    torch.manual_seed(0)
    classifier = SmallCNN(3, 10, width=8).eval()
    labels = torch.arange(10).repeat_interleave(5)
    pool = ClassPool(torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8), labels, 10)
    images = torch.rand(6, 3, 8, 8)
    outputs = []
    for chunk_size in (None, 7):
        defense = MixupInference("other", n_executions=5, chunk_size=chunk_size)
        with torch.no_grad():
            outputs.append(defense.bind(classifier, pool, seed=1)(images))
    assert MixupInference("other").chunk_length(images) == CPU_CHUNK_SIZE
    assert torch.allclose(outputs[0], outputs[1], atol=1e-6)
