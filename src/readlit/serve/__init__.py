"""Serve a trained model over HTTP: jobs that write mp4 files, clip-by-clip streams, live audio and a web page.

``python -m readlit.serve ckpt=...`` (or ``make serve``) starts it; ``conf/serve.yaml`` holds its settings and
experiments/serve/README.md its measurements. Layers: ``fmp4`` (segments a browser plays while the rest is made),
``settings`` (validated request fields), ``uploads`` (bounded multipart parsing into a job folder), ``jobs`` (the
queue, workers, cancellation and clean-up), ``app`` (the FastAPI routes), ``static/`` (the page).
"""
