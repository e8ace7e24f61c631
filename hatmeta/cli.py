"""The `hatmeta` command line: a thin layer over the Python API.

Subcommands are imported only when called, so `hatmeta --help` and each command start fast.
User mistakes (InputError) are printed as one line on stderr with exit code 2, never a traceback; so are
the other expected failures (an unreadable or full disk, text that is not UTF-8, input nested too deeply,
out of memory: hatmeta/failures.py). A traceback is printed only for a bug, with a request to report it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from .errors import InputError

# name -> "module:attribute" of a click command; loaded on first use.
COMMANDS = {
    "pool": "hatmeta.commands.pool:pool",
    "trials": "hatmeta.review.commands:trials",
    "validate": "hatmeta.review.commands:validate",
    "add-trial": "hatmeta.review.commands:add_trial",
    "init": "hatmeta.review.commands:init",
    "forest": "hatmeta.commands.figures:forest",
    "funnel": "hatmeta.commands.figures:funnel",
    "posterior": "hatmeta.commands.figures:posterior",
    "table": "hatmeta.commands.figures:table",
    "sof": "hatmeta.review.commands:sof",
    "report": "hatmeta.review.commands:report",
    "reproduce": "hatmeta.review.commands:reproduce",
    "tsa": "hatmeta.commands.tsa:tsa",
    "baujat": "hatmeta.commands.influence:baujat",
    "influence": "hatmeta.commands.influence:influence",
    "revman": "hatmeta.commands.revman:revman",
    "revman-export": "hatmeta.commands.revman:revman_export",
    "convert": "hatmeta.commands.convert:convert",
    "nma": "hatmeta.commands.nma:nma",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name in COMMANDS if self._available(name))

    @staticmethod
    def _available(name) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx, name):
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Extraction folder to use instead of the bundled data/extracted/.")
@click.option("--analyses-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of analysis specs (*.toml) to use instead of the bundled analyses/ "
                   "(default: an analyses/ folder next to --data-dir, if there is one).")
@click.version_option(package_name="hatmeta")
@click.pass_context
def cli(ctx, data_dir, analyses_dir):
    """hatmeta: meta-analysis of heroin-assisted treatment trials, and of any trial table."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = data_dir
    ctx.obj["analyses_dir"] = analyses_dir
    # Named analyses (`hatmeta pool retention`) come from the HAT review, built only when a command asks
    # for one (hatmeta.commands.named): `--data` runs never import the review.
    ctx.obj["analyses"] = lambda: _review(ctx.obj)
    if analyses_dir is None and data_dir is None:
        return  # the bundled specs: nothing to set, and the review's modules (60 ms) stay unimported
    from .review.spec import analyses_next_to

    if analyses_dir is not None and not __import__("os").path.isdir(analyses_dir):
        raise InputError(f"folder not found: {analyses_dir}", option="--analyses-dir")
    if analyses_dir is None and data_dir is not None:
        analyses_dir = analyses_next_to(data_dir)
    ctx.obj["analyses_dir"] = analyses_dir


def _review(obj):
    from .review.provider import ReviewAnalyses

    return ReviewAnalyses(data_dir=obj.get("data_dir"), analyses_dir=obj.get("analyses_dir"))


def main(argv=None):
    import warnings

    with warnings.catch_warnings():  # restores the warning printer for in-process callers
        original = warnings.showwarning
        warnings.showwarning = lambda *a, **k: _show_warning(original, *a, **k)
        try:
            cli.main(args=argv, prog_name="hatmeta", standalone_mode=False)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            if exc.details:  # a refused analysis: what is missing, a few short lines
                click.echo(exc.details, err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            sys.exit(0)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - sorted into expected failures and bugs below
            from .failures import describe

            text = describe(exc)
            if text is None:  # a genuine bug: the traceback, and a request to report it
                import traceback

                traceback.print_exc()
                click.echo("error: this is a bug in hatmeta, not a mistake in your input; please report it with the "
                           "command you ran and the traceback above", err=True)
                sys.exit(1)
            click.echo(f"error: {text}", err=True)
            sys.exit(2)
    sys.exit(0)


_shown: set = set()


def _show_warning(original, message, category, filename, lineno, file=None, line=None):
    """NumPy's RuntimeWarnings (overflow, invalid value) as one line without install paths, once each."""
    if issubclass(category, RuntimeWarning):
        text = str(message)
        if text not in _shown:
            _shown.add(text)
            click.echo(f"warning: numerical problem while computing ({text}); check the magnitudes of the input",
                       err=True)
        return
    original(message, category, filename, lineno, file, line)


if __name__ == "__main__":
    main()
