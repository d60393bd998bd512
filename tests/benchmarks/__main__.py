"""``python -m tests.benchmarks``: the clinic benchmark (see clinic_benchmark.py)."""

import sys

from tests.benchmarks.clinic_benchmark import main

sys.exit(main())
