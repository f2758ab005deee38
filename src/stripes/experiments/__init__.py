"""Experiments: what turns trained models into numbers and tables.

Data flows one way: ``stripes.train`` writes a run folder -> :mod:`.evaluate` adds ``metrics_{bars}.json``
-> :mod:`.sweep` runs grids of such runs (through a :mod:`.launchers` backend) -> :mod:`.report` reads the
finished run folders and writes tables, figures and verdicts; :mod:`.reproduce` chains sweeps, the MI table
and the report. No module here imports one that comes later in that chain.
"""
