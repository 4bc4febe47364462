"""Diagnostics that only the synthetic talking heads allow, because their faces and mouths are known.

The mouth opening measured from pixels with its correlation and offset search (``mouth_sync``), clip seams
of long videos (``seams``) and a VAE's encode/decode round trip on synthetic clips (``vae_roundtrip``,
``python -m readlit.eval.synthetic.vae_roundtrip RUN_DIR``). The metric that scores generated videos with
the mouth measure is :mod:`readlit.eval.metrics.mouth_sync`.
"""
