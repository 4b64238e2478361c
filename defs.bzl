"""Shared build settings: one place for compiler options and the test-per-file pattern."""

# -Werror=switch: a switch over an enum (step kinds, layer kinds, modes) that misses a value is an error, not
# a warning, so a new kind cannot silently fall through the interpreters and emitters.
KILN_COPTS = ["-fopenmp", "-Werror=switch"]
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

def kiln_tests(srcs, deps, data = [], size = "small", sizes = {}, splits = {}):
    """One cc_test per file: tests/foo_test.cc -> :foo_test, of size sizes.get(name, size).

    A file in `splits` ({name: {suffix: doctest test-case filter}}) becomes one target per entry instead,
    :foo_test_<suffix>, each running the cases its filter selects: heavy files run in parallel and each
    target stays well inside its timeout. Every case must be selected by some filter.
    """
    for src in srcs:
        name = src[:-3]
        parts = splits.get(name, {"": None})
        for suffix, cases in parts.items():
            native.cc_test(
                name = name + ("_" + suffix if suffix else ""),
                srcs = [src],
                copts = KILN_COPTS,
                linkopts = KILN_LINKOPTS,
                deps = deps,
                data = data,
                args = ["--test-case=" + cases] if cases else [],
                size = sizes.get(name, size),
            )
