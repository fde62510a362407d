"""Item lists: folders (class folders, WordNet ids, ILSVRC names), CSV, JSON, Python lists, and their errors."""

from __future__ import annotations

import json

import pytest

from cam_widget.batch import BatchJob, BatchJobError, Item, collect_items, imagenet_wnids
from cam_widget.classnames import imagenet_class_names

NAMES = imagenet_class_names()


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_wnids_are_the_ilsvrc_folder_names():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000
    assert wnids[0] == "n01440764"  # tench
    assert wnids[281] == "n02123045" and NAMES[281] == "tabby"


def test_class_folders_by_name_and_by_wordnet_id(tmp_path):
    _touch(tmp_path / "tabby" / "a.jpg")
    _touch(tmp_path / "n07920052" / "deep" / "b.PNG")  # espresso, nested one level deeper
    _touch(tmp_path / "tabby" / "notes.txt")
    items = collect_items(tmp_path, NAMES, 1000)
    assert [(i.path.split("/")[-1], i.label) for i in items] == [("b.PNG", 967), ("a.jpg", 281)]


def test_unlabelled_folders_and_a_class_folder_typo(tmp_path):
    _touch(tmp_path / "2019" / "a.jpg")
    _touch(tmp_path / "misc" / "b.jpg")
    assert [i.label for i in collect_items(tmp_path, NAMES, 1000)] == [None, None]
    _touch(tmp_path / "tabby" / "c.jpg")  # one real class among non-classes: most likely a typo
    with pytest.raises(BatchJobError, match="match no class: '2019', 'misc'"):
        collect_items(tmp_path, NAMES, 1000)


def test_flat_ilsvrc_validation_names_get_their_labels(tmp_path):
    _touch(tmp_path / "ILSVRC2012_val_00000001.JPEG")
    items = collect_items(tmp_path, NAMES, 1000)
    assert items[0].label == 65  # the official label of the first validation image (sea snake)


def test_csv_with_labels_boxes_and_relative_paths(tmp_path):
    csv = tmp_path / "sub" / "list.csv"
    csv.parent.mkdir()
    csv.write_text("Path,label,x0,y0,x1,y1\nimgs/a.jpg,tabby,1,2,30,40\n/abs/b.jpg,n07920052,,,,\nc.jpg,,,,,\n")
    items = collect_items(csv, NAMES, 1000)
    assert items == [
        Item(str(tmp_path / "sub" / "imgs" / "a.jpg"), 281, (1.0, 2.0, 30.0, 40.0)),
        Item("/abs/b.jpg", 967, None),
        Item(str(tmp_path / "sub" / "c.jpg"), None, None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,label\na.jpg,notaclass\n", r"list.csv line 2: No class is named 'notaclass'"),
        ("file,label\na.jpg,1\n", "header naming 'path'"),
        ("path,x0,y0\na.jpg,1,2\n", "needs all four columns"),
        ("path,label,x0,y0,x1,y1\na.jpg,1,5,5,2,9\n", r"line 2: the box must satisfy"),
        ("path,label\na.jpg,1000\n", "out of range"),
        ("path,label\na.jpg,n99999999\n", "not one of the 1000 ImageNet WordNet ids"),
        ("path\n", "is empty"),
    ],
)
def test_bad_csv_names_the_line_and_the_fix(tmp_path, text, message):
    csv = tmp_path / "list.csv"
    csv.write_text(text)
    with pytest.raises(BatchJobError, match=message):
        collect_items(csv, NAMES, 1000)


def test_json_and_python_lists(tmp_path):
    doc = tmp_path / "items.json"
    doc.write_text(json.dumps(["a.jpg", {"path": "b.jpg", "label": 3, "box": [0, 0, 5, 5]}]))
    assert collect_items(doc, NAMES, 1000) == [
        Item(str(tmp_path / "a.jpg")), Item(str(tmp_path / "b.jpg"), 3, (0.0, 0.0, 5.0, 5.0)),
    ]  # fmt: skip
    listed = collect_items([str(tmp_path / "a.jpg"), (str(tmp_path / "b.jpg"), "tabby")], NAMES, 1000)
    assert listed[1] == Item(str(tmp_path / "b.jpg"), 281)
    with pytest.raises(BatchJobError, match="item 0: every item needs a 'path'"):
        collect_items([{"label": 3}], NAMES, 1000)


def test_missing_folder_and_wrong_file_type(tmp_path):
    with pytest.raises(BatchJobError, match="No such folder or file"):
        collect_items(tmp_path / "nope", NAMES, 1000)
    with pytest.raises(BatchJobError, match=r"not a \.csv or \.json"):
        collect_items(_touch(tmp_path / "a.jpg"), NAMES, 1000)
    with pytest.raises(BatchJobError, match="No image files"):
        collect_items(_touch(tmp_path / "txt" / "a.txt").parent, NAMES, 1000)


def test_a_job_is_plain_picklable_data_and_checks_its_options(tmp_path):
    import pickle

    job = BatchJob(items=[str(tmp_path / "a.jpg")], out=tmp_path / "out", methods="cam, gradcam", metrics="iou")
    assert job.methods == ("cam", "gradcam") and job.metrics == ("iou",) and job.out == str(tmp_path / "out")
    assert pickle.loads(pickle.dumps(job)) == job
    assert job.fingerprint([Item("a")]) == BatchJob(**{**job.__dict__, "batch_size": 7}).fingerprint([Item("a")])
    assert job.fingerprint([Item("a")]) != job.fingerprint([Item("b")])
    with pytest.raises(BatchJobError, match="Unknown metric"):
        BatchJob(items=[], out="o", metrics=("accuracy",))
    with pytest.raises(BatchJobError, match="shard_size must be a positive integer"):
        BatchJob(items=[], out="o", shard_size=0)
