"""Check a real item or batch against its TypedDict in :mod:`readlit.data.batch`: keys, types, dtypes, shapes."""

from typing import Annotated, Any, NotRequired, get_args, get_origin, get_type_hints

import torch


def field_types(contract: type) -> dict[str, Any]:
    """Each field's declared type, NotRequired unwrapped (Annotated kept)."""
    hints = get_type_hints(contract, include_extras=True)
    return {key: get_args(hint)[0] if get_origin(hint) is NotRequired else hint for key, hint in hints.items()}


def assert_follows(sample: dict[str, Any], contract: type, sizes: dict[str, int]) -> dict[str, int]:
    """Assert ``sample`` has every required key of ``contract``, no undeclared key, and the declared types.

    Tensor fields must have the declared dtype and shape. A shape letter takes the size in ``sizes`` when given,
    else the size it first had in ``sample``, so every field must agree (F of ``video`` = F of ``mouth_open`` ...).
    Returns the sizes of every letter seen.
    """
    keys, required = set(sample), contract.__required_keys__
    declared = required | contract.__optional_keys__
    assert required <= keys, f"{contract.__name__}: missing {sorted(required - keys)}"
    assert keys <= declared, f"{contract.__name__}: undeclared {sorted(keys - declared)}"
    sizes = dict(sizes)
    for key, hint in field_types(contract).items():
        if key not in sample:
            continue
        value = sample[key]
        if get_origin(hint) is Annotated:
            _, shape, dtype = get_args(hint)
            assert isinstance(value, torch.Tensor) and value.dtype == dtype, f"{key}: {type(value)} {value.dtype}"
            letters = shape.split()
            assert value.ndim == len(letters), f"{key}: shape {tuple(value.shape)} is not ({shape})"
            for letter, size in zip(letters, value.shape, strict=True):
                expected = int(letter) if letter.isdigit() else sizes.setdefault(letter, size)
                assert size == expected, f"{key}: {letter} = {size} in {tuple(value.shape)}, expected {expected}"
        elif hint == list[str]:
            assert isinstance(value, list) and all(isinstance(item, str) for item in value), f"{key}: {value!r}"
            assert len(value) == sizes.setdefault("B", len(value)), f"{key}: {len(value)} entries"
        else:
            assert type(value) is hint, f"{key}: {type(value).__name__}, declared {hint.__name__}"
    return sizes
