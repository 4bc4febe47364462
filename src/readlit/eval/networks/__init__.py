"""Ported reference networks and their exact preprocessing, each file opening with its provenance.

A file here reproduces one network (or one fixed pipeline step such as face tracking) of a public
repository so that its released weights load by name and give that repository's numbers: the paper, the
original repository and file, the weights file, and what was checked against the original are stated at
the top of each file. No metric arithmetic: that is :mod:`readlit.eval.metrics`.
"""
