from converter.testing import FormatTests


class TestCsv(FormatTests):
    format = "csv"
