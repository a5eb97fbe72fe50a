import sys

from .main import main

if __name__ == "__main__":  # spawned worker processes (the espeak pool) import the main module
    sys.exit(main())
