"""The documentation's ```python examples run as written (```py ones need files that earlier
commands write, e.g. an exported model), its links point at files that exist, and every flag
its commands give a script exists."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md",
        ROOT / "experiments" / "README.md"]


def test_python_blocks_run(capsys):
    blocks = [(doc, block) for doc in DOCS
              for block in re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)]
    assert blocks, "the docs have no python example"
    for doc, block in blocks:
        exec(compile(block, str(doc), "exec"), {})
    assert "corrupted_ids" in capsys.readouterr().out


def prose(text: str) -> str:
    """The text without code blocks and inline code."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", text, flags=re.S))


def test_relative_links_resolve():
    links = [(doc, target) for doc in DOCS
             for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", prose(doc.read_text()))]
    assert len(links) > 10
    broken = [f"{doc.relative_to(ROOT)}: {target}" for doc, target in links
              if not (doc.parent / target).exists()]
    assert not broken, broken


def test_readme_is_a_page_not_a_notebook():
    lines = README.read_text().splitlines()
    assert len(lines) <= 120, len(lines)
    assert not [line for line in lines if re.search(r"(?<![\w/])#\d+\b", line)], \
        "internal issue numbers in README.md"
SCRIPTS = ("build_pretraining_dataset.py", "run_pretraining.py", "run_finetuning.py",
           "export_model.py", "convert_checkpoint.py")


def commands(text: str) -> list[tuple[str, list[str]]]:
    """(script, its --flags) for every `python <script>.py ...` line of the shell blocks,
    continuation lines joined."""
    found, blocks, fence = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
            if fence in ("", "bash", "sh"):
                blocks.append([])
            continue
        if fence in ("", "bash", "sh"):
            blocks[-1].append(line)
    for block in blocks:
        for command in "\n".join(block).replace("\\\n", " ").splitlines():
            command = command.split("#")[0]
            match = re.search(r"python (\S+\.py)\b(.*)", command)
            if match and match.group(1) in SCRIPTS:
                flags = re.findall(r"(?:^|\s)--([a-z_0-9]+)", match.group(2))
                found.append((match.group(1), flags))
    return found


def test_every_flag_the_docs_give_a_command_exists():
    import subprocess
    import sys

    named = [(doc, script, flags) for doc in DOCS for script, flags in commands(doc.read_text())]
    assert {script for _, script, _ in named} == set(SCRIPTS)
    known = {}
    for script in SCRIPTS:
        out = subprocess.run([sys.executable, str(README.parent / script), "--helpfull"],
                             capture_output=True, text=True, timeout=300).stdout
        known[script] = {m.group(2) for m in re.finditer(r"^\s+--(\[no\])?([a-z_0-9]+)", out,
                                                         flags=re.M)}
        known[script] |= {f"no{name}" for name in known[script]}
        assert len(known[script]) > 20, out[-2000:]
    unknown = [f"{doc.name}: {script} --{flag}" for doc, script, flags in named
               for flag in flags if flag not in known[script]]
    assert not unknown, unknown
