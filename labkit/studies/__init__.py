"""The studies: one folder per question, above the lab's core.

A study holds everything its question needs: its workloads (registered through the
``labkit.workloads`` entry-point group, as anyone's are), its own run where a Sweep is not
enough, its analysis and its figures, and a small public ``__init__`` its notebook uses::

    from labkit.studies import autoscale
    plan = autoscale.BurstyComparison(...)

Studies import the core (cluster, store, measure, probes, workloads, experiment, analysis,
plots) and never each other; the core imports no study. Both rules are import-linter
contracts in pyproject.toml.
"""
