"""Undo what the plain-text export of the World English Bible did to its text.

`diatheke -f plain` (see NOTICE) damages the text in two ways, both repaired here:
- Headings. It prints the current heading (a psalm's title such as "A Psalm by David.", a
  letter of Psalm 119 such as "BETH") before *every* verse, and the heading of a chapter's
  first verse at the end of the chapter before it; and it carries the last heading on into
  chapters that have none: Psalm 145's and Psalm 151's titles precede most verses of the books
  after them, about 21,000 lines, a fifth of the file's words. It also leaves 295 lines of
  OSIS markup (`<title ...>...</title> <lg sID=.../>Tobit 6:18:`) that hold no verse text.
- Glued words. It drops each footnote marker together with the space after the word it was
  attached to, so about 370 places read "Godcreated", "LordYahweh", "conceived,and" or
  "Yahweh’sword".

Run from the repository:

    python demo_data/repair_web.py            # rewrites demo_data/web.txt.gz in place
    python demo_data/repair_web.py --check    # exit 1 and list what is left, change nothing

Headings: a heading is a chapter's last line that appears again in the next chapter (every
such line of this file is a psalm title), or a line that is one capitalized word (Psalm 119's
Hebrew letters). Each heading is kept once, where it starts: as the first line of the chapter
whose first verse it precedes, or in place inside Psalm 119; a repeat of the heading in force
is dropped, and so are markup lines. A psalm whose title is the same as the psalm's before it
(e.g. Psalm 24 after Psalm 23, both "A Psalm by David.") cannot be told from a repeat and
loses its title. The heading rule runs only on the export's own output, recognized by its
markup lines: on repaired text a chapter may end with a line the next one repeats ("Selah.").

Glued words, three rules, applied in this order, each a place where the Bible's text always
has a space:
1. a letter, then , ; : . ? or !, then a letter ("conceived,and", "world.The");
2. a possessive "’s" or a negative "n’t" run into the next word ("Yahweh’sword", "won’tmove"),
   and a lower-case letter followed by a capital inside a word ("ofZamoth", "ChristJesus": no
   word of this text has one);
3. a word that is no English word, is rare in this text (at most 3 times, any casing) and
   splits into two words that each occur at least 3 times on their own ("ofthe" -> "of the",
   "Godcreated" -> "God created", "LordYahweh" -> "Lord Yahweh"); of several splits, the one
   whose two words stand side by side most often elsewhere in the text ("ason" -> "a son",
   not "as on"), then the one whose rarer half is most frequent. "English word" means
   pyspellchecker's English list (MIT, in the test extra). Names of people and places and a
   few compounds pass that test but are real: `NOT_GLUED` lists them, each read in its verse.

The same rules find nothing on the repaired text, so a second run changes nothing
(`tests/test_demo_data.py` checks that, and that nothing is left).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import pathlib
import re
import sys

WEB = pathlib.Path(__file__).resolve().parent / "web.txt.gz"
MIN_PART_COUNT = 3    # each half of a split occurs at least this often on its own
MAX_GLUED_COUNT = 3   # a glued word is rare: at most this often, any casing

# Real words of the World English Bible that rule 3 would split (names, and compounds the
# dictionary lacks), each checked in its verse.
NOT_GLUED = frozenset("""
Acub Acud Adina Adoniram Aher Allon Amad Amam Aman Anan Antiochis Aradus Aran Arbite Ardon Arim
Arkite Arod Aseas Atar Baalis Banias Beera Beno Beon Bered Berites Beten Cainan Dothan Ela Eliam
Enaim Enam Enon Eran Ethanus Gether Hamon Hamran Hara Haram Harhas Harmagedon Hashem Heled Horam
Iram Justus Labana Menan Paulus Salemas Saraias Shebarim Someis Telaim Urias Uzzia Zina
companionships floodwaters manan masterbuilder myrrha rulership sata spearmen
""".split())

_WORD = re.compile(r"[A-Za-z]+")
_PUNCT_GLUE = re.compile(r"(?<=[A-Za-z])([,;:.?!])(?=[A-Za-z])")
_CLITIC_GLUE = re.compile(r"(?<=[A-Za-z])(’s|(?<=n)’t)(?=[a-z]{2,})")
_CAMEL_GLUE = re.compile(r"(?<=[a-z])(?=[A-Z])")
_MARKUP = re.compile(r"^\s*<")
_ONE_CAPITALIZED_WORD = re.compile(r"^[A-Z]+$")


def chapters(text: str) -> list[list[str]]:
    """The file's documents (chapters; a blank line between them) as lists of lines."""
    return [doc.split("\n") for doc in text.strip("\n").split("\n\n")]


def repair_headings(docs: list[list[str]]) -> list[list[str]]:
    """Each heading once, where it starts; its repeats and markup lines dropped."""
    headings = {line for doc, after in zip(docs, docs[1:]) for line in doc[-1:] if line in after}
    repaired, current, carried = [], None, None
    for doc in docs:
        out = [carried] if carried is not None else []
        carried = None
        for i, line in enumerate(doc):
            if _MARKUP.match(line):
                continue
            if line in headings or _ONE_CAPITALIZED_WORD.match(line):
                if line == current:
                    continue
                current = line
                if i == len(doc) - 1 and line in headings:
                    carried = line  # it precedes the next chapter's first verse
                    continue
            out.append(line)
        repaired.append(out)
    return repaired


def english_words() -> frozenset[str]:
    """Lower-cased English words: pyspellchecker's word-frequency list."""
    try:
        from spellchecker import SpellChecker
    except ImportError:
        sys.exit("repair_web.py needs pyspellchecker (pip install pyspellchecker, or the test "
                 "extra) for its English word list")
    return frozenset(SpellChecker(language="en").word_frequency.keys())


def repair_punctuation(text: str) -> str:
    """Rules 1 and 2: a space after glued punctuation and clitics, and inside "ofZamoth"."""
    return _CAMEL_GLUE.sub(" ", _CLITIC_GLUE.sub(r"\1 ", _PUNCT_GLUE.sub(r"\1 ", text)))


def glued_words(text: str, english: frozenset[str]) -> dict[str, tuple[str, str]]:
    """Rule 3: {glued word: (first word, second word)} found in `text`."""
    words = _WORD.findall(text)
    count = collections.Counter(words)
    pairs = collections.Counter(zip(words, words[1:]))
    any_case = collections.Counter(w.lower() for w in words)

    def is_part(piece: str) -> bool:
        return count[piece] >= MIN_PART_COUNT and (len(piece) > 1 or piece in ("a", "A", "I"))

    found = {}
    for word in count:
        if (word in NOT_GLUED or word.lower() in english
                or any_case[word.lower()] > MAX_GLUED_COUNT):
            continue
        splits = [(pairs[word[:i], word[i:]], min(count[word[:i]], count[word[i:]]),
                   word[:i], word[i:])
                  for i in range(1, len(word)) if is_part(word[:i]) and is_part(word[i:])]
        if splits:
            *_, first, second = max(splits)
            found[word] = (first, second)
    return found


def repair(text: str, english: frozenset[str]) -> tuple[str, dict[str, tuple[str, str]]]:
    """Headings, then the three rules; returns the repaired text and rule 3's splits."""
    if any(_MARKUP.match(line) for line in text.split("\n")):
        text = "\n\n".join("\n".join(doc) for doc in repair_headings(chapters(text))) + "\n"
    text = repair_punctuation(text)
    splits = glued_words(text, english)
    if splits:
        text = _WORD.sub(lambda m: " ".join(splits.get(m.group(0), (m.group(0),))), text)
    return text, splits


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--file", type=pathlib.Path, default=WEB, help="a .txt.gz to repair")
    p.add_argument("--check", action="store_true", help="list what is left; change nothing")
    args = p.parse_args(argv)
    text = gzip.open(args.file, "rt", encoding="utf-8").read()
    repaired, splits = repair(text, english_words())
    lines = sum(len(doc) for doc in chapters(text))
    dropped = lines - sum(len(doc) for doc in chapters(repaired))
    punctuation = sum(len(rule.findall(text)) for rule in (_PUNCT_GLUE, _CLITIC_GLUE, _CAMEL_GLUE))
    glued = sum(len(re.findall(rf"\b{w}\b", text)) for w in splits)
    print(f"{args.file}: {dropped} of {lines} lines are repeated headings or markup; "
          f"{punctuation} places of rules 1-2, {glued} glued words ({len(splits)} distinct)")
    if args.check:
        for word, (first, second) in sorted(splits.items()):
            print(f"  {word} -> {first} {second}")
        return 1 if repaired != text else 0
    if repaired != text:
        # mtime=0: the same text gives the same bytes, so the file only changes with its text
        with open(args.file, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(repaired.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
