import sys
from pathlib import Path

# Test helpers (tests/nirgraphs.py, tests/programs.py) import as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))
