"""astrorag's Gradio app: `python app.py [--host 127.0.0.1] [--port 7860] [--auth USER:PASS] [--index NAME]`.

The same entry as `python -m astrorag serve`: this file only forwards its arguments.
"""

import sys

from astrorag.cli import main as cli_main


def main(argv=None) -> int:
    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
