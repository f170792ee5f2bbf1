"""The command-line reference: every clerk-replica command and option, read from the typer app
through the click command model typer builds from it."""

from __future__ import annotations

from typing import Any

import typer.main

from docs_gen.markdown import code, page, plain, table
from service.cli import cli

NO_OPTIONS = "No options."


def _is_argument(param: Any) -> bool:
    return bool(param.param_type_name == "argument")


def _default(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return ""
    value = param.default
    if value is None or value == () or value == [] or callable(value):
        return ""
    return code(value)


def _names(param: Any) -> str:
    if _is_argument(param):
        return code((param.metavar or param.name or "").upper())
    names = [*param.opts, *getattr(param, "secondary_opts", [])]
    return ", ".join(code(n) for n in names)


def _params(command: Any) -> str:
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        what = "argument" if _is_argument(param) else "option"
        if param.multiple:
            what += ", repeatable"
        if param.required:
            what += ", required"
        rows.append(
            (_names(param), what, _default(param), plain(getattr(param, "help", None) or ""))
        )
    return table(("name", "what", "default", "meaning"), rows) if rows else NO_OPTIONS


def _help(command: Any) -> str:
    text = (command.help or "").strip()
    # click's \b marks a paragraph it must not rewrap; Markdown needs no such mark.
    text = "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()
    paragraphs = []
    for paragraph in text.split("\n\n"):
        head, _, rest = paragraph.partition(":")
        if head in ("Example", "Examples"):
            # "Examples: a;  b" -> the commands in a shell block.
            lines = [" ".join(c.split()) for c in rest.split(";") if c.strip()]
            paragraph = f"{head}:\n\n```sh\n" + "\n".join(lines) + "\n```"
        else:
            paragraph = plain(paragraph)
        paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


def render() -> str:
    group: Any = typer.main.get_command(cli)
    context = group.context_class(group, info_name="clerk-replica")
    sections = []
    top = _params(group)
    if top != NO_OPTIONS:
        sections.append(f"## `clerk-replica`\n\n{group.help or ''}\n\n{top}")
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        usage = " ".join(command.collect_usage_pieces(context))
        sections.append(
            f"## `clerk-replica {name}`\n\n```\nclerk-replica {name} {usage}\n```\n\n"
            f"{_help(command)}\n\n{_params(command)}"
        )
    return page(
        "Commands",
        """
Every command has `--help` with examples. Errors are one line (`LOG_LEVEL=debug` adds the
traceback), and a command that did not do what was asked exits non-zero. Every command reads
its configuration from the environment ([Settings](settings.md)).
""",
        *sections,
    )
