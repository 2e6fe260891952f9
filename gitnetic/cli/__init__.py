"""One module per subcommand; each exposes ``DESCRIPTION`` and ``main(argv) -> int``."""
