"""HTTP benchmark (issue 4): filled in once panko-api exists."""


def run(bench):
    raise RuntimeError("HTTP benchmark: not implemented yet")
