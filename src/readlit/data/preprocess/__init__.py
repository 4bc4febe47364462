"""Raw HDTF / MEAD downloads -> the clip cache (:mod:`readlit.data.cache`); CLI: :mod:`readlit.preprocess`.

- ``hdtf_layout`` / ``mead_layout``: which raw files make which clips (accepted layouts documented there)
- ``decode``: frames at the cache's fps and audio at its sample rate, on one clock (PyAV)
- ``detect`` / ``face_track`` / ``crop``: face boxes (crop windows or a tracked detector) and 512² crops
- ``scene``: scene-cut check; ``clip_job``: one clip, atomically; ``splits``; ``pipeline``: the whole run
"""
