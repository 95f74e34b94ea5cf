"""One module per `coltiva` subcommand, each exposing `command`."""
