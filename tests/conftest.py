import os
import shutil
import sys
from pathlib import Path

# Installed third-party plugins must not change what the suite sees; tests that want
# entry points build their own plugin manager.
os.environ["CONVERTER_LOAD_PLUGINS"] = ""

# A suite started in the background of a non-interactive shell (`bash .ci/run &`, nohup) inherits
# SIGINT ignored, and so would every command it starts: the tool then rightly ignores Ctrl-C, and
# the tests of what Ctrl-C does would skip or fail. Give the commands the terminal's disposition.
import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))


@pytest.fixture
def fixtures():
    return FIXTURES


@pytest.fixture
def copy_fixture(tmp_path):
    """Copy fixture files (all files NAME.* for a base name) into tmp_path; return the new path."""

    def copy(rel):
        src = FIXTURES / rel
        matches = [src] if src.exists() else sorted(src.parent.glob(src.name + ".*"))
        assert matches, f"no fixture {rel}"
        for m in matches:
            shutil.copy2(m, tmp_path / m.name)
        return tmp_path / src.name

    return copy


@pytest.fixture(autouse=True)
def _fresh_registry():
    from converter.registry import reset_registry

    reset_registry()
    yield
    reset_registry()
