import sys

from .cli import main

# The guard matters: dask's LocalCluster starts worker processes that import the main module again.
if __name__ == "__main__":
    sys.exit(main())
