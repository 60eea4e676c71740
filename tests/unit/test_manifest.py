"""Catalog manifests: CSV and JSON Lines, every kind of bad row reported with line, field and reason."""

from __future__ import annotations

import json

import pytest

from media_upload.catalog.manifest import RowProblem, Target, read_manifest

COVER = "https://sg-live-01.slatic.net/p/cover.png"
HEADER = "seller_sku,item_id,sku_id,video,title,cover_url,block_size,video_usage"


def lazada(row) -> dict:
    """The row's Lazada fields."""
    (target,) = [t for t in row.targets if t.platform == "lazada"]
    return dict(target.fields)


def write_csv(tmp_path, *lines: str, header: str = HEADER):
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_good_csv_rows(tmp_path):
    path = write_csv(
        tmp_path,
        f"red-m,,,videos/red.mp4,Red dress,{COVER},,",
        f',2374791958,"13896560193,13896560194",https://cdn.example.com/blue.mp4,Blue dress,{COVER},3000000,im',
    )
    rows, problems, unknown = read_manifest(str(path))
    assert problems == [] and unknown == []
    assert (rows[0].line, rows[0].video, rows[0].title, rows[0].cover_url) == (
        2,
        str(tmp_path / "videos" / "red.mp4"),
        "Red dress",
        COVER,
    )
    assert rows[0].targets == (
        Target(
            "lazada",
            "sku:red-m",
            "red-m",
            {"seller_sku": "red-m", "item_id": None, "sku_ids": (), "video_usage": "pro_main_video"},
        ),
    )
    assert rows[0].label == "red-m"
    assert (rows[1].targets[0].product, rows[1].label) == ("item:2374791958", "item 2374791958")
    assert lazada(rows[1])["sku_ids"] == ("13896560193", "13896560194")
    assert (rows[1].video, rows[1].block_size, lazada(rows[1])["video_usage"]) == (
        "https://cdn.example.com/blue.mp4",
        3000000,
        "im",
    )


def test_good_jsonl_rows_and_blank_lines(tmp_path):
    path = tmp_path / "catalog.jsonl"
    records = [
        {"seller_sku": "a", "video": "/abs/a.mp4", "title": "A", "cover_url": COVER},
        {"item_id": 12, "sku_id": 34, "video": "b.mp4", "title": "B", "cover_url": COVER, "block_size": 1000},
    ]
    path.write_text(json.dumps(records[0]) + "\n\n" + json.dumps(records[1]) + "\n")
    rows, problems, _ = read_manifest(str(path))
    assert problems == []
    assert [(row.line, row.video) for row in rows] == [(1, "/abs/a.mp4"), (3, str(tmp_path / "b.mp4"))]
    assert lazada(rows[1])["item_id"] == "12" and lazada(rows[1])["sku_ids"] == ("34",)
    assert rows[1].block_size == 1000


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        (
            f",,,v.mp4,T,{COVER},,",
            "(row)",
            "names no product to put the video on: give seller_sku or item_id",
        ),
        (f",12x,,v.mp4,T,{COVER},,", "item_id", "'12x' is not a number"),
        (f"s,,99,v.mp4,T,{COVER},,", "sku_id", "sku_id needs item_id"),
        (f",12,9a,v.mp4,T,{COVER},,", "sku_id", "'9a' is not a number"),
        (f"s,,,,T,{COVER},,", "video", "the video path or URL is missing"),
        (f"s,,,v.mp4,  ,{COVER},,", "title", "the video title is missing"),
        ("s,,,v.mp4,T,cover.png,,", "cover_url", "is not an http(s) URL"),
        ("s,,,v.mp4,T,,,", "cover_url", "is not an http(s) URL"),
        (f"s,,,v.mp4,T,{COVER},0,", "block_size", "'0' is not a whole number of bytes"),
        (f"s,,,v.mp4,T,{COVER},10000001,", "block_size", "10,000,001 is more than Lazada's 10,000,000 bytes"),
        (f"s,,,v.mp4,T,{COVER},big,", "block_size", "'big'"),
        (f"s,,,v.mp4,T,{COVER},,banner", "video_usage", "'banner' is not one of pro_main_video, im"),
        (f"s,,,v.mp4,T,{COVER},,,extra", "(row)", "more values than header columns"),
    ],
)
def test_every_kind_of_bad_csv_row_is_reported_and_the_good_ones_kept(tmp_path, line, field, reason):
    path = write_csv(tmp_path, f"good,,,v.mp4,Good,{COVER},,", line, f"also-good,,,w.mp4,Also good,{COVER},,")
    rows, problems, _ = read_manifest(str(path))
    assert [row.label for row in rows] == ["good", "also-good"]
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.line, problem.field) == (3, field) and reason in problem.reason
    assert str(problem).startswith(f"line 3, {field}")


def test_a_product_named_twice_keeps_its_first_row(tmp_path):
    path = write_csv(
        tmp_path,
        f"s,,,a.mp4,A,{COVER},,",
        f"s,,,b.mp4,B,{COVER},,",
        f",5,,c.mp4,C,{COVER},,",
        f",5,,d.mp4,D,{COVER},,",
    )
    rows, problems, _ = read_manifest(str(path))
    assert [row.video.rsplit("/", 1)[1] for row in rows] == ["a.mp4", "c.mp4"]
    assert problems == [
        RowProblem(3, "(row)", "s is already on line 2", "lazada"),
        RowProblem(5, "(row)", "item 5 is already on line 4", "lazada"),
    ]


def test_bad_json_lines(tmp_path):
    path = tmp_path / "catalog.jsonl"
    path.write_text(
        '{"seller_sku": "a", "video": "a.mp4", "title": "A", "cover_url": "'
        + COVER
        + '"}\n{not json\n[1, 2]\n'
    )
    rows, problems, _ = read_manifest(str(path))
    assert len(rows) == 1
    assert [(p.line, p.field) for p in problems] == [(2, "(row)"), (3, "(row)")]
    assert "not valid JSON" in problems[0].reason and problems[1].reason == "not a JSON object"


def test_unknown_columns_are_named(tmp_path):
    path = write_csv(
        tmp_path,
        f"s,,,a.mp4,A,{COVER},colour",
        header="seller_sku,item_id,sku_id,video,title,cover_url,colour",
    )
    rows, problems, unknown = read_manifest(str(path))
    assert len(rows) == 1 and problems == [] and unknown == ["colour"]


def test_the_manifest_itself_must_exist_and_be_csv_or_jsonl(tmp_path):
    with pytest.raises(ValueError, match=r"absent.csv: no such file"):
        read_manifest(str(tmp_path / "absent.csv"))
    (tmp_path / "catalog.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"must be a \.csv or \.jsonl file"):
        read_manifest(str(tmp_path / "catalog.xlsx"))


def test_relative_videos_of_a_remote_manifest_stay_remote():
    from media_upload.catalog.manifest import _video_location

    assert _video_location("a.mp4", "s3://bucket/catalog") == "s3://bucket/catalog/a.mp4"
    assert _video_location("https://x/y.mp4", "s3://bucket/catalog") == "https://x/y.mp4"
    assert (
        _video_location("../b.mp4", "/media/catalog") == "/media/catalog/../b.mp4"
    )  # the policy resolves it


def test_any_bytes_give_row_problems_and_keep_the_good_rows(tmp_path):
    """Not UTF-8, a 200 kB field, a stray quote: each is one problem with its line; the rest goes on."""
    good = f"good,,,v.mp4,Good,{COVER},,\r\n".encode()
    data = (
        "\ufeff".encode()  # a BOM
        + HEADER.encode()
        + b"\r\n"
        + good  # line 2
        + b"latin,,,v.mp4,Caf\xe9,"  # line 3: Latin-1, not UTF-8
        + COVER.encode()
        + b",,\r\n"
        + f"big,,,v.mp4,{'x' * 200_000},{COVER},,\n".encode()  # line 4: a field over csv's limit
        + f'open,,,v.mp4,"never closed,{COVER},,\n'.encode()  # line 5: the quote swallows line 6
        + f"swallowed,,,v.mp4,S,{COVER},,\n".encode()
        + f'closes",,,v.mp4,C,{COVER},,\n'.encode()  # line 7
        + f"last,,,w.mp4,Last,{COVER},,".encode()  # line 8, no newline at the end
    )
    path = tmp_path / "catalog.csv"
    path.write_bytes(data)
    rows, problems, _ = read_manifest(str(path))
    assert [(row.line, row.label) for row in rows] == [(2, "good"), (8, "last")]
    assert [(problem.line, problem.field) for problem in problems] == [
        (3, "(row)"),
        (4, "(row)"),
        (5, "(row)"),
    ]
    assert "not UTF-8 text (byte 0xe9 at column 18)" in problems[0].reason
    assert "field larger than field limit" in problems[1].reason and "quote left open" in problems[1].reason
    assert "a quote opened on line 5 closes only on line 7" in problems[2].reason


def test_a_manifest_without_a_video_column_is_refused_whole(tmp_path):
    path = write_csv(tmp_path, f"s,v.mp4,{COVER}", header="seller_sku,clip,cover_url")
    with pytest.raises(
        ValueError, match=r"catalog.csv: its first line is not a header with a video column; see the sample"
    ) as refused:
        read_manifest(str(path))
    assert "clip" not in str(refused.value)  # the file's content is never echoed


@pytest.mark.parametrize(
    "content", [b"", b"\n\n", HEADER.encode() + b"\n"], ids=["empty", "blank", "header-only"]
)
def test_an_empty_manifest_has_no_rows_and_no_problems(tmp_path, content):
    path = tmp_path / "catalog.csv"
    path.write_bytes(content)
    assert read_manifest(str(path)) == ([], [], [])


def test_a_row_names_its_product_on_every_marketplace(tmp_path):
    """One row, three marketplaces: a Lazada SKU, a Shopee item, a VOD asset name; each checked on its own."""
    path = write_csv(
        tmp_path,
        f"red,,,red.mp4,Red dress,{COVER},,,777,red-dress",
        f"blue,,,blue.mp4,Blue dress,{COVER},,,77x,",
        ",,,green.mp4,,,,,,green",
        header=f"{HEADER},shopee_item_id,huawei_vod",
    )
    rows, problems, unknown = read_manifest(str(path))
    assert unknown == []
    assert [[(t.platform, t.product, t.label) for t in row.targets] for row in rows] == [
        [
            ("lazada", "sku:red", "red"),
            ("huawei_vod", "red-dress", "red-dress"),
            ("shopee", "item:777", "shopee 777"),
        ],
        [("lazada", "sku:blue", "blue")],
    ]
    assert [(p.line, p.field, p.platform) for p in problems] == [
        (3, "shopee_item_id", "shopee"),
        (4, "title", "huawei_vod"),  # a VOD asset needs a title
    ]
    # A catalog for Lazada alone reads the same file: the other columns name nothing it uploads to.
    rows, problems, _ = read_manifest(str(path), platforms=("lazada",))
    assert [row.label for row in rows] == ["red", "blue"]
    assert [(p.line, p.field) for p in problems] == [(4, "(row)")]
