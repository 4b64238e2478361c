"""Shared build settings: one place for compiler options and the test-per-file pattern."""

KILN_COPTS = ["-fopenmp"]
KILN_LINKOPTS = ["-fopenmp"]

def kiln_library(name, deps, visibility = ["//visibility:public"]):
    """The one cc_library of a directory: every .cc and .h in it."""
    native.cc_library(
        name = name,
        srcs = native.glob(["*.cc"]),
        hdrs = native.glob(["*.h"]),
        copts = KILN_COPTS,
        linkopts = KILN_LINKOPTS,
        visibility = visibility,
        deps = deps,
    )

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
