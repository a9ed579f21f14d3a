"""Headless command line: `python -m bot <command> [options]`; `python -m bot --help` lists them.

Each command lives in its own module under `bot/cli/` and defines `COMMAND` (its name),
`HELP` (one line), `add_arguments(parser)` and `run(args, settings) -> int`. Commands are found
automatically, so adding one never touches this file.

Exit codes, the same for every command (README, "Exit codes"): 0 done, 1 failed or refused (nothing
happened that you do not know about), 2 bad usage or settings (missing or refused API keys
included), 3 critical error of a running bot (the supervisor restarts it), 4 an order was sent and
accepted (or may have been) but its outcome is not known yet: it is resolved by its orderLinkId by
the next command or start; do not place it again by hand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import bot.cli
from bot.errors import AuthError, BotError, ConfigError, OutcomeUnknownError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3, 4


def _commands() -> dict[str, object]:
    found = {}
    for info in sorted(pkgutil.iter_modules(bot.cli.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"bot.cli.{info.name}")
        if hasattr(mod, "COMMAND") and hasattr(mod, "run"):
            found[mod.COMMAND] = mod
    return found


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    commands = _commands()
    parser = argparse.ArgumentParser(prog="python -m bot", description="AI trading terminal, headless.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env in the project folder)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in commands.items():
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "__doc__", None) or mod.HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if hasattr(mod, "add_arguments"):
            mod.add_arguments(p)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    from bot.log_setup import setup_logging
    from config import load_settings

    try:
        settings = load_settings(args.env_file)
    except ConfigError as exc:
        print(f"settings error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(log_file=settings.log_path, level=settings.LOG_LEVEL, secrets=settings.secret_values(),
                  max_bytes=settings.LOG_MAX_BYTES, backup_count=settings.LOG_BACKUP_COUNT)
    try:
        return int(commands[args.command].run(args, settings) or 0)
    except KeyboardInterrupt:
        logging.getLogger("bot").warning("interrupted")
        return EXIT_FAILED
    except ConfigError as exc:
        logging.getLogger("bot").error("settings error: %s", exc)
        return EXIT_USAGE
    except AuthError as exc:
        logging.getLogger("bot").error("API keys: %s", exc)
        return EXIT_USAGE
    except OutcomeUnknownError as exc:
        logging.getLogger("bot").error("accepted, outcome unknown, will be resolved: %s", exc)
        return EXIT_UNKNOWN
    except BotError as exc:
        logging.getLogger("bot").error("%s: %s", type(exc).__name__, exc)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
