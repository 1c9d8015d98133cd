"""The marketer's guide, section 7 ("Adding a persona, end to end"), followed word by word on
a copy of the example: each YAML block whose first line names a file is written there (or,
for "add under routing.rules", inserted where it says), then each command of the `sh` block
runs in order and must succeed; the last is `ripen audit content --strict`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.e2e.test_cli import ripen
from tests.factories import REPO, example_tree

GUIDE = REPO / "docs" / "marketers-guide.md"
BLOCK = re.compile(r"```(yaml|sh)\n(.*?)```", re.DOTALL)


def _section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("## 7. Adding a persona, end to end")
    following = text.find("\n## ", start + 10)
    return text[start:] if following == -1 else text[start:following]


def _apply(block: str, root: Path) -> str:
    """Write a `# path` block, or insert a `# path: add under routing.rules, before the rule
    "X"` block; returns the path."""
    first, _, body = block.partition("\n")
    target = first.removeprefix("# ").strip()
    if ": add under routing.rules" in target:
        path, _, where = target.partition(": ")
        before = re.search(r'before the rule "([^"]+)"', where)
        assert before, where
        file = root / path
        text = file.read_text(encoding="utf-8")
        anchor = f"    - id: {before.group(1)}\n"
        assert anchor in text, f"{path} has no rule {before.group(1)}"
        file.write_text(text.replace(anchor, body + anchor, 1), encoding="utf-8")
        return path
    assert not (root / target).exists(), f"{target} would overwrite a shipped file"
    (root / target).write_text(body, encoding="utf-8")
    return target


def test_adding_a_persona_as_the_guide_says_reaches_a_strict_content_audit(
        tmp_path: Path) -> None:
    root = tmp_path / "shop"
    example_tree(root)
    blocks = BLOCK.findall(_section())
    files = [_apply(body, root) for kind, body in blocks if kind == "yaml"]
    assert files == ["config/personas/ines-arbeitsvorbereitung.yaml",
                     "content/ines-arbeitsvorbereitung.yaml",
                     "config/journeys/ines-arbeitsvorbereitung.yaml", "config/sla.yaml"]
    [commands] = [body for kind, body in blocks if kind == "sh"]
    env = {"RIPEN_HOME": str(root), "RIPEN_DATABASE_URL": f"sqlite:///{root / 'ripen.db'}",
           "RIPEN_MAIL_URL": f"maildir:{root / 'outbox'}"}
    ran = []
    for line in commands.strip().splitlines():
        assert line.startswith("ripen "), line
        result = ripen(*shlex.split(line)[1:], cwd=root, env=env, timeout=600)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        ran.append((line.split()[1], result.stdout))
    outputs = dict(ran)
    assert "OK: 4 personas" in outputs["validate"]
    notes = [line for line in outputs["validate"].splitlines() if line.startswith("note:")]
    assert not [note for note in notes if "ines" in note]  # Ines overlaps nobody
    assert outputs["personas"].rstrip().endswith("persona: ines-arbeitsvorbereitung")
    assert (root / "var" / "ines.html").is_file()
    assert "ines-arbeitsvorbereitung" in outputs["simulate"]
    assert "ines-arbeitsvorbereitung@" in outputs["tick"]
    assert [name for name, _ in ran][-1] == "audit"
