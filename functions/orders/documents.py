"""Brazilian document numbers: CPF and CNPJ check digits."""

from __future__ import annotations


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii() and ch.isdigit())


def _check_digit(digits: str, weights: range | list[int]) -> str:
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=False))
    rest = total % 11
    return "0" if rest < 2 else str(11 - rest)


def is_valid_cpf(text: str) -> bool:
    digits = _digits(text)
    if len(digits) != 11 or digits == digits[0] * 11:
        return False
    first = _check_digit(digits[:9], range(10, 1, -1))
    second = _check_digit(digits[:10], range(11, 1, -1))
    return digits[9:] == first + second


_CNPJ_WEIGHTS = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]


def is_valid_cnpj(text: str) -> bool:
    digits = _digits(text)
    if len(digits) != 14 or digits == digits[0] * 14:
        return False
    first = _check_digit(digits[:12], _CNPJ_WEIGHTS[1:])
    second = _check_digit(digits[:13], _CNPJ_WEIGHTS)
    return digits[12:] == first + second
