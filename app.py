"""astrorag's Gradio app: `python app.py [--host 127.0.0.1] [--port 7860] [--auth USER:PASS]`."""

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from astrorag.errors import AstroRagError  # noqa: E402
from astrorag.settings import Settings  # noqa: E402
from astrorag.ui import serve  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="astrorag web app")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--auth", help="USER:PASS required to use the app")
    parser.add_argument("--index", dest="index_name", help="index name")
    args = parser.parse_args(argv)
    try:
        serve(Settings.load(index_name=args.index_name), args.host, args.port, args.auth)
    except AstroRagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
