"""credbroker's benchmark (``scripts/bench``): code here, output in ``bench/results.json``."""
