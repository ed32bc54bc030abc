"""One thin module per ``virnucpro`` subcommand: ``register(subparsers)`` and ``run(args)``.

``preprocess``, ``extract``, ``merge``, ``import_features`` (``virnucpro import``),
``split``, ``train``, ``evaluate``, ``compare`` and ``predict``, in pipeline
order; ``options`` holds the argparse value types they share.
"""
