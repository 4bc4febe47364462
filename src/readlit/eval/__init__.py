"""Evaluation: the paper's metrics, the reference networks they stand on, and the synthetic-data diagnostics.

``metrics/`` holds the torchmetrics classes, ``networks/`` the ported reference networks with their exact
preprocessing, ``synthetic/`` the measures only the synthetic data allows. Beside them: ``weights`` (the
pretrained files: ``python -m readlit.eval.weights``), ``protocol`` (generating a dataset's test split for
scoring), ``scoring`` (every metric over a generated and a reference folder) and ``report`` (JSON + Markdown
table). The entry point is ``python -m readlit.evaluate``.
"""
