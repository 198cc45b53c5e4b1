"""Member numbers carry a Luhn check digit, so a mistyped number is caught at the counter."""

import pytest

from members.services import is_valid_member_no, member_no_next, with_check_digit

FULLWIDTH = str.maketrans(
    "0123456789", "".join(chr(0xFF10 + d) for d in range(10))
)  # fullwidth digits, as a Chinese IME types them
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))  # Arabic-Indic digits


class TestWithCheckDigit:
    def test_appends_the_luhn_check_digit(self):
        number = with_check_digit("7992739871")

        assert number == "79927398713"

    @pytest.mark.parametrize(
        ("digits", "expected"),
        [("0", "00"), ("1", "18"), ("100000000", "1000000008"), ("123456789", "1234567897")],
    )
    def test_matches_known_luhn_numbers(self, digits, expected):
        number = with_check_digit(digits)

        assert number == expected


class TestIsValidMemberNo:
    def test_accepts_a_number_with_its_check_digit(self):
        number = with_check_digit("7992739871")

        valid = is_valid_member_no(number)

        assert valid is True

    def test_rejects_a_wrong_check_digit(self):
        valid = is_valid_member_no("79927398710")

        assert valid is False

    def test_rejects_every_single_changed_digit(self):
        number = with_check_digit("1234567890")

        mistyped = [
            number[:i] + d + number[i + 1 :] for i in range(len(number)) for d in "0123456789" if d != number[i]
        ]

        assert [m for m in mistyped if is_valid_member_no(m)] == []

    @pytest.mark.parametrize("table", [FULLWIDTH, ARABIC_INDIC], ids=["fullwidth", "arabic-indic"])
    def test_rejects_non_ascii_digits_even_when_the_check_digit_fits(self, table):
        number = with_check_digit("7992739871").translate(table)

        valid = is_valid_member_no(number)

        assert valid is False

    @pytest.mark.parametrize("value", ["", "18", with_check_digit("12345678")])  # all but "" pass the Luhn check
    def test_rejects_numbers_shorter_than_ten_digits(self, value):
        valid = is_valid_member_no(value)

        assert valid is False

    @pytest.mark.parametrize("value", ["7992739871 ", " 79927398713", "7992-739871", "79927398713\n"])
    def test_rejects_anything_but_digits(self, value):
        valid = is_valid_member_no(value)

        assert valid is False


@pytest.mark.django_db
class TestMemberNoNext:
    def test_gives_a_valid_ten_digit_number(self):
        number = member_no_next()

        assert len(number) == 10 and is_valid_member_no(number)

    def test_never_gives_the_same_number_twice(self):
        first = member_no_next()

        second = member_no_next()

        assert first != second and is_valid_member_no(second)
