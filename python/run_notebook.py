"""Runs a notebook headless (nbclient), every cell in order; exits 1 naming
the cell that failed. CI runs examples/book_chapters_5_and_6.ipynb with it."""

import sys
import time

import nbclient
import nbformat


def main(path):
    nb = nbformat.read(path, as_version=4)
    started = time.time()
    try:
        nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3").execute()
    except nbclient.exceptions.CellExecutionError as e:
        print(f"{path}: a cell failed:\n{e}", file=sys.stderr)
        return 1
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("name") == "stdout":
                print(out["text"], end="")
    print(f"{path}: every cell ran ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
