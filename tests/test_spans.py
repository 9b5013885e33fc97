"""Entity spans in the graph (electra_tf.spans) are the chunks fine-tuning's span F1 reads."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from electra_tf import metrics, spans


def test_chunks_in_the_graph_are_conllevals_on_random_tag_sequences():
    rng = np.random.default_rng(0)
    tags = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC",
            "I-ORG", "misc"]
    rows = [list(rng.choice(tags, rng.integers(0, 12))) for _ in range(400)]
    rows += [[], ["I-PER"], ["O", "I-PER", "I-LOC"], ["B-PER", "E-PER", "I-PER"]]
    first, last, kind = spans.chunk_bounds(tf.ragged.constant(rows, dtype=tf.string))
    for i, row in enumerate(rows):
        got = set(zip(first[i].numpy().tolist(), last[i].numpy().tolist(),
                      kind[i].numpy().astype(str).tolist()))
        assert got == metrics.chunks(row), row
        assert first[i].numpy().tolist() == sorted(first[i].numpy().tolist())


def test_split_tags():
    prefix, kind = spans.split_tags(tf.constant(["O", "B-PER", "i-org-x", "misc", "S-"]))
    assert prefix.numpy().astype(str).tolist() == ["O", "B", "I", "O", "S"]
    assert kind.numpy().astype(str).tolist() == ["", "PER", "org-x", "", ""]
