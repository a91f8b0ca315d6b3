"""Row references (``training/data.py::resolve_ref``): what the hand-labeled benchmark files store
instead of texts, resolved the same way by every reader (the severity benchmark, the alert
benchmark's planted harm reports). Written on generated files in each format."""

import csv

from training.data import resolve_ref


def test_each_ref_format_resolves_to_its_own_text(tmp_path):
    (tmp_path / "shop").mkdir()
    with open(tmp_path / "shop" / "reviews.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cat", "label", "review"])
        w.writerow(["水果", "0", "\ufeff苹果到货就坏了"])
        w.writerow(["书籍", "1", "纸张很好"])
    (tmp_path / "asap").mkdir()
    with open(tmp_path / "asap" / "dev_sample.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "review", "reviewbody"])
        w.writerow(["7", "title only", "吃完肚子疼"])
    # a TSV whose other column holds a template: the text is the ``text_a`` column
    (tmp_path / "polarity.tsv").write_text(
        "label\ttext_a\ttemplate\n1\t用了不过敏，很好用\t用了不$T$，很好用的长模板文字\n",
        encoding="utf-8",
    )
    (tmp_path / "semeval.xml").write_text(
        '<sentences><sentence id="1004293:0"><text>Found a hair in it.</text></sentence>'
        '<sentence id="1004293:1"><text>Never again.</text></sentence></sentences>',
        encoding="utf-8",
    )
    (tmp_path / "mams.xml").write_text(
        "<sentences><sentence><text>first</text></sentence>"
        "<sentence><text>The soup was cold.</text></sentence></sentences>",
        encoding="utf-8",
    )
    assert resolve_ref("shop/reviews.csv", "0", tmp_path) == "苹果到货就坏了"  # BOM dropped
    assert resolve_ref("shop/reviews.csv", "1", tmp_path) == "纸张很好"
    assert resolve_ref("asap/dev_sample.csv", "0", tmp_path) == "吃完肚子疼"
    assert resolve_ref("polarity.tsv", "0", tmp_path) == "用了不过敏，很好用"
    assert resolve_ref("semeval.xml", "1004293:1", tmp_path) == "Never again."
    assert resolve_ref("mams.xml", "idx:1", tmp_path) == "The soup was cold."
