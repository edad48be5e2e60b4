import sys
from pathlib import Path

# Shared test helpers (tests/support) import as `support`.
sys.path.insert(0, str(Path(__file__).parent))
