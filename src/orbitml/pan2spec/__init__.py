"""pan2spec: predict CRISM spectral bands from single-band CTX images (Stepcenkov, Wilhelm, Woehler 2022).

Modules: ``pairs`` (build co-registered pairs), ``align`` (sub-pixel registration), ``normalise``,
``data`` (patches and augmentations), ``train``, ``predict``, ``evaluate``, ``demo``.
"""
