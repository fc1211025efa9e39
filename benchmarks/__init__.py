"""The project's benchmark suites, one module each, run from the repository root as
``python -m benchmarks.NAME`` (``benchmarks/README.md`` lists them). Their shared harness is
:mod:`benchmarks.suite`: fresh-process probes and rounds with their spread (``suite.rounds``), and the
results page with the machine and the commit (``suite.publish``)."""
