"""Command-line interface. Every ``cmd_*.py`` module here registers one top-level subcommand."""
