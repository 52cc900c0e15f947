"""The one home of the random streams: `seeding.Stream`, `Part` and `DataStream`.

The numbers are pinned: every draw of every earlier run used them, so changing one changes
results. Within each enum no two purposes share a number (`enum.unique` refuses it at import;
the test checks the values themselves).
"""

import pytest
import torch

from mixup_robust.seeding import DataStream, Part, Stream, data_generator, derive_seed

# The constants as they stood in nine files before they moved to seeding.py.
# (enum member, number) pairs: IntEnum members of different enums with one number are equal
# ints, so a dict would merge them.
FORMER_VALUES = [
    (Stream.MI_CLASS, 1),  # defenses/mixup_inference.py _CLASS_STREAM
    (Stream.MI_MEMBER, 2),  # _MEMBER_STREAM
    (Stream.TRANSFORM_A, 11),  # defenses/random_transform.py STREAM_A
    (Stream.TRANSFORM_B, 12),
    (Stream.TRANSFORM_C, 13),
    (Stream.TRANSFORM_D, 14),  # defenses/crop_pad.py _STREAM_D
    (Stream.TRANSFORM_E, 15),
    (Stream.LINEARITY_START, 71),  # evaluation/linearity/module.py _START_STREAM
    (Stream.MI_COMBINED_PARTS, 0xC0),  # defenses/mixup_inference_combined.py _SEED_STREAM
    (Stream.TRIAL, 0x7A1),  # evaluation/trials.py _TRIAL_STREAM
    (Stream.ATTACK_DRAW, 0xD4A3),  # defenses/base.py _DRAW_STREAM
    (Stream.FULL_LADDER, 0xF011),  # evaluation/audit/module.py _FULL_LADDER_STREAM
    (Part.UNBOUNDED_PROBE, 0),  # evaluation/audit/ladder.py _UNBOUNDED_KEY
    (Part.MI_PL, 1),  # defenses/mixup_inference_combined.py _PL_KEY
    (Part.MI_OL, 2),  # _OL_KEY
    (DataStream.SPLIT, 1),  # data/base.py _generator(1)
    (DataStream.TEST_SUBSET, 2),
    (DataStream.POOL, 3),
    (DataStream.POOL_AUGMENT, 4),
]


@pytest.mark.parametrize("enum", [Stream, Part, DataStream])
def test_every_number_of_an_enum_is_unique(enum):
    values = [member.value for member in enum]
    assert len(values) == len(set(values))
    # an alias (a second name on a taken number) would not be a member of its own
    assert len(enum.__members__) == len(values)


def test_every_number_is_the_former_constant():
    assert [(member, int(member)) for member, _ in FORMER_VALUES] == FORMER_VALUES
    members = {(type(member), member.name) for member, _ in FORMER_VALUES}
    assert len(members) == len(Stream) + len(Part) + len(DataStream) == 19


def test_a_member_keys_the_same_draw_as_its_number():
    for stream in Stream:
        assert derive_seed(7, stream, 3) == derive_seed(7, int(stream), 3)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_data_generator_is_the_former_seed_times_1000_plus_purpose(seed):
    for stream in DataStream:
        new = torch.randperm(50, generator=data_generator(seed, stream))
        old = torch.randperm(
            50, generator=torch.Generator().manual_seed(seed * 1000 + stream.value)
        )
        assert torch.equal(new, old)
    first = torch.randperm(50, generator=data_generator(seed, DataStream.SPLIT))
    assert not torch.equal(
        first, torch.randperm(50, generator=data_generator(seed, DataStream.POOL))
    )


def test_data_generator_refuses_a_number_that_is_no_data_stream():
    with pytest.raises(ValueError):
        data_generator(0, 9)
