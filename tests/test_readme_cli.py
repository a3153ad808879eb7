"""The README's "## Command line" block lists every option of every subcommand of the real parser
(tinycc.cli.build_parser), and every choice of the options that take a fixed set of values, so
the README cannot drift from the command line.

`python tests/test_readme_cli.py` prints a complete block generated from the parser, to paste
into the README when a command gains an option.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinycc.cli import build_parser  # noqa: E402

WIDTH = 100


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def documented_actions(p: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options of a subcommand (positionals and --help aside)."""
    return [a for a in p._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def listed_choices(action: argparse.Action) -> list[str]:
    """Choices the README must spell out: those of an option without a metavar (with a metavar,
    e.g. --target CORE, the help text lists them)."""
    return [str(c) for c in action.choices] if action.choices and action.metavar is None else []


def cli_block(text: str) -> str:
    """The first fenced code block after the '## Command line' heading."""
    section = text.split("\n## Command line\n", 1)
    if len(section) != 2:
        raise AssertionError("README.md has no '## Command line' section")
    match = re.search(r"^```[^\n]*\n(.*?)^```", section[1], re.S | re.M)
    if match is None:
        raise AssertionError("the '## Command line' section has no code block")
    return match.group(1)


def usage_of(block: str, command: str) -> str:
    """The lines of `tinycc COMMAND ...` in the block, up to the next `tinycc ...` line."""
    lines, inside = [], False
    for line in block.splitlines():
        if line.startswith("tinycc "):
            inside = line.split()[1:2] == [command]
        if inside:
            lines.append(line)
    return "\n".join(lines)


def _mentions(text: str, token: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def missing_from(block: str, parser: argparse.ArgumentParser) -> list[str]:
    """What the block does not list: subcommands, options, choices (as readable strings)."""
    missing = []
    for action in parser._actions:
        if action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            if not any(_mentions(block, o) for o in action.option_strings):
                missing.append(f"tinycc {action.option_strings[-1]}")
    for command, p in subcommands(parser).items():
        usage = usage_of(block, command)
        if not usage:
            missing.append(f"tinycc {command}")
            continue
        for action in documented_actions(p):
            if not any(_mentions(usage, o) for o in action.option_strings):
                missing.append(f"tinycc {command} {action.option_strings[-1]}")
            for choice in listed_choices(action):
                if not _mentions(usage, choice):
                    missing.append(f"tinycc {command} {action.option_strings[-1]} {choice}")
    return missing


# ---- the block, generated -------------------------------------------------------------------------
COMMON_LAST = ["calib", "calib_method", "calib_samples", "bias_correction", "input_shape", "debug"]


def _token(action: argparse.Action) -> str:
    option = action.option_strings[0]
    if action.nargs == 0:
        text = option
    else:
        choices = "|".join(map(str, action.choices)) if action.choices else ""
        value = choices if choices and (action.metavar is None or len(choices) <= 32) else \
            action.metavar or action.dest.upper()
        text = f"{option} {value}"
    return text if action.required else f"[{text}]"


def render_block(parser: argparse.ArgumentParser | None = None) -> str:
    """Every subcommand's usage: positionals, required options, the command's own options in the
    parser's order, then the quantization and model options the commands share."""
    parser = parser or build_parser()
    commands = subcommands(parser)
    pad = max(map(len, commands))
    lines = []
    for command, p in commands.items():
        positionals = [(a.metavar or a.dest).upper() + (".onnx" if a.dest == "model" else "")
                       for a in p._actions if not a.option_strings]
        actions = documented_actions(p)
        common = sorted((a for a in actions if a.dest in COMMON_LAST), key=lambda a: COMMON_LAST.index(a.dest))
        own = [a for a in actions if a.dest not in COMMON_LAST]
        tokens = positionals + [_token(a) for a in own if a.required] + \
            [_token(a) for a in own + common if not a.required]
        head = f"tinycc {command:<{pad}} "
        line = head
        for token in tokens:
            if len(line) + len(token) + 1 > WIDTH and line.strip() != head.strip():
                lines.append(line.rstrip())
                line = " " * len(head)
            line += token + " "
        lines.append(line.rstrip())
    lines.append("tinycc --version")
    return "\n".join(lines) + "\n"


# ---- tests ----------------------------------------------------------------------------------------
def test_readme_lists_every_option_of_every_command():
    block = cli_block((ROOT / "README.md").read_text())
    missing = missing_from(block, build_parser())
    assert not missing, ("README.md's '## Command line' block does not list: " + ", ".join(missing)
                         + ". Regenerate it with `python tests/test_readme_cli.py`.")


def test_generated_block_is_complete_and_a_gap_is_found():
    parser = build_parser()
    block = render_block(parser)
    assert missing_from(block, parser) == []
    assert max(map(len, block.splitlines())) <= WIDTH
    gap = block.replace("[--dequantize]", "")
    assert missing_from(gap, parser) == ["tinycc run --dequantize"]
    no_qemu = re.sub(r"(--engine \S*)\|qemu", r"\1", block, count=1)
    assert "qemu" in " ".join(missing_from(no_qemu, parser))
    assert "tinycc validate" in missing_from(block.replace("tinycc validate", "tinycc check"), parser)


if __name__ == "__main__":
    print(render_block(), end="")
