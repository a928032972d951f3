"""converter.jsonstream: streaming JSON / JSON Lines readers on real files, checked against json.loads."""

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from converter.errors import FormatError
from converter.jsonstream import iter_json_lines, iter_json_members

ROOT = Path(__file__).resolve().parent.parent
CHUNKS = [1, 2, 3, 5, 7, 64, 4096, 65536]


def expected_records(doc):
    """What iter_json_members must yield for a document, according to json.loads."""
    value = json.loads(doc)
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        return list(enumerate(value))
    return [(0, value)]


def read(path, chunk_size=65536, binary=True):
    with open(path, "rb") if binary else open(path, encoding="utf-8", newline="") as f:
        return list(iter_json_members(f, name=str(path), chunk_size=chunk_size))


def write(tmp_path, data, name="doc.json"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


SAMPLE = {
    "Omkar": {"key": "Omkar", "name": "Omkar Pathak", "age": 21, "pay": 40000},
    "unicode": ["é", "日本語", "\U0001F600", "\u2028\x85\u2029", "\x00\x1f", "\\ud800 is text here"],
    "numbers": [0, -0.0, 1.5e-300, 12345678901234567890123, -1, 1e22, 3.141592653589793],
    "nested": {"a": [[[], {}], [{"b": [None, True, False]}]]},
    "": "empty key",
    "$tag-like": {"$set": 1},
}


@pytest.mark.parametrize("dump_options", [
    {}, {"indent": 2}, {"indent": "\t"}, {"ensure_ascii": False}, {"separators": (",", ":")},
    {"indent": 0, "ensure_ascii": False},
])
@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_object_documents_match_json_loads(tmp_path, dump_options, chunk_size):
    doc = json.dumps(SAMPLE, **dump_options)
    path = write(tmp_path, doc)
    assert read(path, chunk_size) == expected_records(doc)


@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_array_documents_and_text_files(tmp_path, chunk_size):
    doc = json.dumps(list(SAMPLE.values()) + [1, "x", [2]], ensure_ascii=False, indent=1)
    path = write(tmp_path, doc)
    expected = expected_records(doc)
    assert read(path, chunk_size) == expected
    assert read(path, chunk_size, binary=False) == expected
    assert [i for i, _ in expected] == list(range(len(expected)))


@pytest.mark.parametrize("doc", [
    '"just a string"', "12345", "-0.5e-3", "true", "false", "null", ' \n 7 \n', "{}", "[]", " [ ] ", "\t{ }\r\n",
    "[[]]", '{"a":{}}', '[""]', "[0]", "123456789012345678901234567890",
])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 65536])
def test_small_and_scalar_documents(tmp_path, doc, chunk_size):
    """A top-level scalar is one record keyed 0; a number is never cut short by a chunk end."""
    assert read(write(tmp_path, doc), chunk_size) == expected_records(doc)


def test_whitespace_everywhere(tmp_path):
    ws = " \t\r\n \n"
    doc = ws.join(["", "{", '"a"', ":", "[", "1", ",", '"x"', ",", "{", '"b"', ":", "null", "}", "]", ",",
                   '"c"', ":", "-2.5E+3", "}", ""])
    path = write(tmp_path, doc)
    for chunk_size in (1, 2, 4, 9, 1000):
        assert read(path, chunk_size) == expected_records(doc)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 6, 7, 8])
def test_multibyte_characters_straddling_chunk_boundaries(tmp_path, chunk_size):
    # 1-, 2-, 3- and 4-byte UTF-8 characters at every alignment, in keys and values
    text = "aé日\U0001F600" * 7
    doc = json.dumps({text[i:]: [text[:i], i] for i in range(len(text))}, ensure_ascii=False)
    assert read(write(tmp_path, doc), chunk_size) == expected_records(doc)


def test_surrogate_pairs_and_escapes_straddling_chunks(tmp_path):
    doc = json.dumps(["\U0001F600" * 5, "\\" * 7, '"\\"', "\u00e9\t\n"] * 5)  # ASCII-escaped pairs
    path = write(tmp_path, doc)
    for chunk_size in range(1, 14):
        assert read(path, chunk_size) == expected_records(doc)


def test_bom_is_skipped(tmp_path):
    doc = '{"a": [1, "é"]}'
    path = write(tmp_path, b"\xef\xbb\xbf" + doc.encode())
    for chunk_size in (1, 2, 3, 100):
        assert read(path, chunk_size) == expected_records(doc)
    text_path = tmp_path / "bom.json"
    text_path.write_text("\ufeff" + doc, encoding="utf-8")
    assert read(text_path, 2, binary=False) == expected_records(doc)


def test_big_ints_beyond_the_digit_limit(tmp_path):
    digits = "9" * 6000  # beyond Python 3.11's 4300-digit int(str) limit
    doc = '{"n": [' + digits + ", -" + digits + "]}"
    records = read(write(tmp_path, doc), 4096)
    assert records[0][0] == "n"
    assert records[0][1][0] == 10**6000 - 1 and records[0][1][1] == -(10**6000 - 1)


def test_deep_nesting_is_read(tmp_path):
    depth = 100_000
    doc = '{"deep": ' + "[" * depth + '"x"' + "]" * depth + ', "after": [' + "{" * 3 + "}" * 3 + "]}"
    doc = doc.replace("{{{}}}", '{"a":{"b":{}}}')
    records = read(write(tmp_path, doc), 65536)
    value = records[0][1]
    n = 0
    while isinstance(value, list):
        value = value[0]
        n += 1
    assert (n, value) == (depth, "x")
    assert records[1] == ("after", [{"a": {"b": {}}}])


def test_deep_nesting_errors_are_format_errors(tmp_path):
    depth = 50_000
    path = write(tmp_path, "[" + "[" * depth + "1" + "]" * (depth - 1) + "}]")
    with pytest.raises(FormatError, match=r"Expecting ',' delimiter at byte \d+"):
        read(path)


def test_many_small_elements_are_read_in_linear_time(tmp_path):
    timings = {}
    for n in (50_000, 200_000):
        path = write(tmp_path, json.dumps([{"i": i, "s": "é" * (i % 4)} for i in range(n)]), f"a{n}.json")
        start = time.perf_counter()
        records = read(path)
        timings[n] = time.perf_counter() - start
        assert len(records) == n and records[-1] == (n - 1, {"i": n - 1, "s": "é" * ((n - 1) % 4)})
    # 4x the elements; quadratic behaviour would be 16x.  Loose: the machine is shared.
    assert timings[200_000] < 10 * timings[50_000] + 0.5, timings


class CountingReader(io.RawIOBase):
    """A real file whose read() calls are counted (to see how the buffer grows)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.sizes = []

    def read(self, size=-1):
        data = self.f.read(size)
        self.sizes.append(len(data))
        return data

    def close(self):
        self.f.close()
        super().close()


def test_one_huge_element_is_read_by_doubling(tmp_path):
    big = "x" * 4_000_000
    path = write(tmp_path, json.dumps([1, {"big": big}, 2]))
    reader = CountingReader(path)
    try:
        records = list(iter_json_members(reader, chunk_size=1024))
    finally:
        reader.close()
    assert records == [(0, 1), (1, {"big": big}), (2, 2)]
    # geometric growth: about log2(4 MB / 1 KiB) = 12 reads, not 4000
    assert len(reader.sizes) < 40, reader.sizes


def test_gzip_stream(tmp_path):
    path = tmp_path / "doc.json.gz"
    doc = json.dumps({str(i): [i, "é"] for i in range(5000)}, ensure_ascii=False)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(doc)
    with gzip.open(path, "rb") as f:
        assert list(iter_json_members(f, chunk_size=1000)) == expected_records(doc)


# --- errors -------------------------------------------------------------------------

def error_of(tmp_path, data, chunk_size=65536):
    path = write(tmp_path, data, "bad.json")
    with pytest.raises(FormatError) as info:
        read(path, chunk_size)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


@pytest.mark.parametrize("data, problem", [
    (b"", r"empty file$"),
    (b" \n\t ", r"empty file \(only whitespace\)"),
    (b"\xef\xbb\xbf", r"empty file"),
    (b"[1, NaN]", r"NaN is not valid JSON in the value at byte 4"),
    (b'{"a": Infinity}', r"Infinity is not valid JSON"),
    (b"[-Infinity]", r"-Infinity is not valid JSON"),
    (b'{"a": 1, "b": 2, "a": 3}', r"duplicate key 'a' at byte 17"),
    (b'[{"x": {"y": 1, "y": 2}}]', r"duplicate key 'y' in the value at byte 1"),
    (b'["ok", "\\ud800"]', r"lone surrogate escape \\ud800 .* at byte 8"),
    (b'["\\udc00"]', r"lone surrogate escape \\udc00"),
    (b'{"\\ud800": 1}', r"lone surrogate escape in a member name"),
    (b'["\\ud83d\\ud83d"]', r"lone surrogate"),
    (b'[1, "\xff"]', r"invalid UTF-8 at byte 5$"),
    (b'[1, "\xc3\x28"]', r"invalid UTF-8 at byte 5$"),
    (b'[1, "\xed\xa0\x80"]', r"invalid UTF-8 at byte 5$"),  # an encoded surrogate is not UTF-8
    (b'["\xc3', r"file ends inside a UTF-8 character at byte 2"),
    (b"[1] [2]", r"extra data after the JSON document at byte 4"),
    (b'{"a": 1} x', r"extra data after the JSON document at byte 9"),
    (b'"a" "b"', r"extra data"),
    (b"[1, 2", r"file ends where ',' or '\]' .* \(truncated\) at byte 5"),
    (b'{"a": [1, 2', r"file ends inside a JSON value, truncated\? .* at byte 11"),
    (b'{"a": "unterminated', r"file ends inside a JSON value, truncated\? \(Unterminated string\) at byte 6"),
    (b'{"a', r"file ends inside a member name"),
    (b'{"a"', r"file ends where ':' after a member name was expected \(truncated\)"),
    (b"[1 2]", r"expected ',' or '\]' after an array element, found '2' at byte 3"),
    (b'{"a": 1 "b": 2}', r"expected ',' or '}' after an object member, found '\"' at byte 8"),
    (b"{1: 2}", r"expected a member name in double quotes, found '1' at byte 1"),
    (b"[1,]", r"at byte 3"),
    (b"[01]", r"at byte 2"),
    (b"\xef\xbb\xbf\xef\xbb\xbf[1]", r"Expecting value at byte 3"),  # only one BOM is skipped
    (b'["a\tb"]', r"Invalid control character at byte 3"),
    (b"[1,\n2,\n  x]", r"Expecting value at byte 9 \(line 3\)"),
])
@pytest.mark.parametrize("chunk_size", [1, 3, 65536])
def test_errors_name_the_file_and_position(tmp_path, data, problem, chunk_size):
    assert re.search(problem, error_of(tmp_path, data, chunk_size))


def test_every_truncation_is_an_error(tmp_path):
    doc = json.dumps({"a": [1, 2.5, {"b": "xé\U0001F600"}], "c": "\\\"", "d": [True, None, False, -12]},
                     ensure_ascii=False).encode()
    for cut in range(len(doc)):
        message = error_of(tmp_path, doc[:cut], chunk_size=4)
        assert re.search(r"at byte \d+|empty file", message), message
    assert read(write(tmp_path, doc), 4) == expected_records(doc.decode())


def test_errors_after_good_records_come_after_those_records(tmp_path):
    path = write(tmp_path, b'{"a": 1, "b": [2], "c": [3 4]}')
    with open(path, "rb") as f:
        members = iter_json_members(f, name="x")
        assert next(members) == ("a", 1)
        assert next(members) == ("b", [2])
        with pytest.raises(FormatError, match=r"^x: Expecting ',' delimiter at byte 27"):
            next(members)


def test_text_file_positions_are_characters(tmp_path):
    path = write(tmp_path, '["é日", NaX]')
    with open(path, encoding="utf-8") as f, pytest.raises(FormatError, match=r"Expecting value at character 7 "):
        list(iter_json_members(f, name="t"))
    with open(path, "rb") as f, pytest.raises(FormatError, match=r"Expecting value at byte 10 "):
        list(iter_json_members(f, name="t"))


def test_text_file_with_a_lone_surrogate_character(tmp_path):
    path = write(tmp_path, b'["a\xed\xa0\x80"]')
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        with pytest.raises(FormatError, match="lone surrogate character at character 3"):
            list(iter_json_members(f, name="t"))


# --- JSON Lines ------------------------------------------------------------------------

LINE_VALUES = [
    {"key": "Omkar", "value": {"age": 21}}, [1, 2], "text with \u2028 and \x85 and \u2029 inside", 3, None,
    {"$tuple": [1]}, 12345678901234567890, -0.0, {"nested": [[{"a": []}]]},
]


def write_lines(tmp_path, lines, ending=b"\n", final=True, name="data.jsonl"):
    data = ending.join(line.encode("utf-8") if isinstance(line, str) else line for line in lines)
    return write(tmp_path, data + (ending if final else b""), name)


def read_lines(path, binary=True):
    with open(path, "rb") if binary else open(path, encoding="utf-8", newline="") as f:
        return list(iter_json_lines(f, name=str(path)))


@pytest.mark.parametrize("ending, final", [(b"\n", True), (b"\n", False), (b"\r\n", True), (b"\r\n", False)])
def test_json_lines_match_json_loads(tmp_path, ending, final):
    lines = [json.dumps(v, ensure_ascii=False) for v in LINE_VALUES]
    path = write_lines(tmp_path, lines, ending, final)
    expected = [(i, json.loads(line)) for i, line in enumerate(lines)]
    assert read_lines(path) == expected
    assert read_lines(path, binary=False) == expected


def test_json_lines_split_only_on_newline(tmp_path):
    # U+2028, U+2029, \x85 and a bare \r are not line breaks (str.splitlines would split on them)
    line = json.dumps(["a\u2028b", "c\x85d", "e\u2029f"], ensure_ascii=False) + "\r \x20"
    path = write_lines(tmp_path, [line, '{"x":\r1}'])
    assert read_lines(path) == [(0, ["a\u2028b", "c\x85d", "e\u2029f"]), (1, {"x": 1})]
    assert len("a\u2028b\x85c".splitlines()) == 3  # what naive splitting would have done


def test_json_lines_blank_lines_are_skipped_and_numbers_kept(tmp_path):
    path = write_lines(tmp_path, ["", "1", "   ", "\t\r", "2", "", ""], final=False)
    assert read_lines(path) == [(1, 1), (4, 2)]


def test_json_lines_empty_file_is_zero_records(tmp_path):
    assert read_lines(write(tmp_path, b"", "e.jsonl")) == []
    assert read_lines(write(tmp_path, b"\n\n", "e.jsonl")) == []


def test_json_lines_bom_and_deep_and_big(tmp_path):
    depth = 100_000
    digits = "7" * 5000
    path = write_lines(tmp_path, ["\ufeff[1]", "[" * depth + "]" * depth, digits])
    records = read_lines(path)
    assert records[0] == (0, [1]) and records[2] == (2, int("7" * 4000) * 10**1000 + int("7" * 1000))
    value, n = records[1][1], 0
    while value:
        value, n = value[0], n + 1
    assert n == depth - 1


def test_json_lines_many_lines(tmp_path):
    lines = [json.dumps({"i": i, "s": "é" * (i % 3)}, ensure_ascii=False) for i in range(100_000)]
    path = write_lines(tmp_path, lines)
    records = read_lines(path)
    assert len(records) == 100_000 and records[-1] == (99_999, json.loads(lines[-1]))


@pytest.mark.parametrize("lines, problem", [
    (["1", "[1, 2", "3"], r"line 2 column 6: Expecting ',' delimiter"),
    (["1", "NaN"], r"line 2: NaN is not valid JSON"),
    (['{"a": 1, "a": 2}'], r"line 1: duplicate key 'a'"),
    (["1", "", '["\\ud800"]'], r"line 3 column 3: lone surrogate escape"),
    (["1 2"], r"line 1 column 3: extra data after the JSON value"),
    (["[1]", b'"\xff"'], r"line 2: invalid UTF-8 at byte 1 of the line"),
    (["1", "\ufeff2"], r"line 2 column 1: Expecting value"),  # a BOM is only skipped at the start of the file
    (['{"a": "cut'], r"line 1 column 7: Unterminated string"),
    (["[1,]"], r"line 1 column [34]"),  # 3.13 reports the trailing comma, older Pythons the "]"
])
def test_json_lines_errors_name_the_line(tmp_path, lines, problem):
    path = write_lines(tmp_path, lines, final=False)
    with pytest.raises(FormatError) as info:
        read_lines(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert re.search(problem, message), message


def test_json_lines_gzip(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wb") as f:
        for v in LINE_VALUES:
            f.write(json.dumps(v).encode() + b"\n")
    with gzip.open(path, "rb") as f:
        assert list(iter_json_lines(f)) == list(enumerate(json.loads(json.dumps(v)) for v in LINE_VALUES))


# --- other Pythons -------------------------------------------------------------------

@pytest.mark.parametrize("python", ["/root/.pyenv/versions/3.10.13/bin/python", "/root/.pyenv/versions/3.13.0/bin/python"])
def test_other_pythons_stream_the_same_records(python, tmp_path):
    if not Path(python).exists():
        pytest.skip(f"{python} is not installed")
    pkg = tmp_path / "lib" / "converter"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name in ("errors.py", "budget.py", "jsonstream.py"):
        shutil.copy(ROOT / "converter" / name, pkg / name)
    shutil.copytree(ROOT / "converter" / "jsontags", pkg / "jsontags", ignore=shutil.ignore_patterns("__pycache__"))
    doc = json.dumps(SAMPLE, indent=2)
    path = write(tmp_path, doc)
    bad = write(tmp_path, b'{"a": [1, 2', "bad.json")
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1])\n"
        "from converter.jsonstream import iter_json_members\n"
        "from converter.errors import FormatError\n"
        "print(json.dumps(list(iter_json_members(open(sys.argv[2], 'rb'), chunk_size=3))))\n"
        "try:\n    list(iter_json_members(open(sys.argv[3], 'rb'), name='bad', chunk_size=3))\n"
        "except FormatError as e:\n    print(e)\n"
    )
    done = subprocess.run([python, "-c", code, str(tmp_path / "lib"), str(path), str(bad)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert done.returncode == 0, done.stderr
    out, err = done.stdout.splitlines()
    assert [tuple(r) for r in json.loads(out)] == [tuple(r) for r in json.loads(json.dumps(expected_records(doc)))]
    assert err.startswith("bad: file ends inside a JSON value") and "at byte 11" in err
