"""Shared build settings: one place for compiler options and the test-per-file pattern."""

KILN_COPTS = ["-fopenmp"]
KILN_LINKOPTS = ["-fopenmp"]

def kiln_tests(srcs, deps, data = [], size = "small", timeouts = {}):
    """One cc_test per file: tests/foo_test.cc -> :foo_test."""
    for src in srcs:
        name = src[:-3]
        native.cc_test(
            name = name,
            srcs = [src],
            copts = KILN_COPTS,
            linkopts = KILN_LINKOPTS,
            deps = deps,
            data = data,
            size = timeouts.get(name, size),
        )
