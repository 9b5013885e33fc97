"""The embedded Bible (demo_data/web.txt.gz) is free of the plain-text export's damage, and the
repair that made it so (demo_data/repair_web.py) does what its docstring says."""

import collections
import gzip
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("repair_web", ROOT / "demo_data" / "repair_web.py")
repair_web = importlib.util.module_from_spec(spec)
spec.loader.exec_module(repair_web)


def test_headings_are_kept_once_where_they_start():
    # As the export writes it: the next chapter's title ends the chapter before, is repeated
    # before every verse, carries on into a chapter without a title, with a markup line.
    exported = [
        ["In the beginning.", "Then the end.", "A Psalm by David."],
        ["Yahweh is my shepherd:", "I shall lack nothing.", "A Psalm by David.",
         "He makes me lie down.", '<title type="psalm">A Psalm by David.</title> Psalm 23:3:',
         "A Psalm by David.", "Surely goodness.", "ALEPH"],
        ["Blessed are the blameless.", "ALEPH", "Blessed are those.", "BETH",
         "How can a young man?", "BETH", "Selah.", "By obeying."],
        ["Praise Yah!", "BETH", "Selah.", "Amen."],
    ]
    assert repair_web.repair_headings(exported) == [
        ["In the beginning.", "Then the end."],
        ["A Psalm by David.", "Yahweh is my shepherd:", "I shall lack nothing.",
         "He makes me lie down.", "Surely goodness."],
        ["ALEPH", "Blessed are the blameless.", "Blessed are those.", "BETH",
         "How can a young man?", "Selah.", "By obeying."],
        ["Praise Yah!", "Selah.", "Amen."],  # the repeated heading goes, "Selah." stays
    ]


def test_glued_words_and_punctuation_are_separated():
    english = frozenset({"outcome", "the", "of", "and", "god", "created", "heavens"})
    line = "God created the heavens and the earth; God saw the outcome of the light and the dark."
    text = "\n".join([line] * 3 + ["In the beginning, Godcreated the heavens,and ofthe earth.",
                                  "The king’sfriends won’tmove; it’s his.", "Aman came.",
                                  "the sons ofZamoth, ChristJesus"])
    repaired, splits = repair_web.repair(text, english)
    assert splits == {"Godcreated": ("God", "created"), "ofthe": ("of", "the")}
    assert repaired.splitlines()[3:] == [
        "In the beginning, God created the heavens, and of the earth.",
        "The king’s friends won’t move; it’s his.",  # "it’s his" was never glued
        "Aman came.",  # a name: no English word, but its halves "A" and "man" are too rare here
        "the sons of Zamoth, Christ Jesus"]
    assert "outcome" in repaired  # an English word stays whole


def test_the_embedded_bible_has_nothing_left_to_repair():
    text = gzip.open(ROOT / "demo_data" / "web.txt.gz", "rt", encoding="utf-8").read()
    assert text.startswith("In the beginning, God created the heavens and the earth.\n")
    repaired, splits = repair_web.repair(text, repair_web.english_words())
    assert splits == {} and repaired == text
    lines = collections.Counter(line for line in text.split("\n") if line)
    assert not [line for line in lines if line.lstrip().startswith("<")]
    # Psalm 145's and Psalm 151's titles once each (the export repeated them ~21,000 times),
    # each letter of Psalm 119 once, and no line more often than the Bible's own "Selah."
    assert lines["A praise psalm by David."] == 1
    assert lines["This Psalm is a genuine one of David, though extra, composed when he fought "
                 "in single combat with Goliath."] == 1
    assert all(lines[letter] == 1 for letter in ("ALEPH", "BETH", "TAV"))
    assert lines.most_common(1) == [("Selah.", 72)]
