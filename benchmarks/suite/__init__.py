"""The benchmark suites' shared harness: fresh-process probes (``child``, ``probes``, ``timing``), rounds and their
spread (``rounds``), streams (``streaming``), soaks, and the results page (``publish``)."""
