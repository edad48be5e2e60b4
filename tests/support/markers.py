"""pytest markers for tests that need a tool from a Debian package (`make tools` installs them)."""

import pytest

from hwcodesign.check.tcl import TCLSH, TCLSH_MISSING

needs_tclsh = pytest.mark.skipif(TCLSH is None, reason=TCLSH_MISSING)
