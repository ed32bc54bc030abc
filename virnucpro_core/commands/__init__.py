"""One thin module per ``virnucpro`` subcommand: ``register(subparsers)`` and ``run(args)``."""
