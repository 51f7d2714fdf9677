"""Organising over HTTP: tags, versions and restore, undo of a delete, export and import; the
cache after each change, and another user's snippet, version or id is exactly "not found"."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

from tests.api.conftest import ApiHarness


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def make_zip(*entries: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_tags_on_snippets_filter_and_counts(api: ApiHarness) -> None:
    ada = await api.user(unique("ada"))
    sort = await api.create(ada, "Sort #Algo", "def qs(xs):\n    return sorted(xs)")
    total = await api.create(ada, "Sum", "def total(xs):\n    return sum(xs)", tags=["Python"])
    assert sort["tags"] == ["algo"] and sort["title"] == "Sort"
    assert total["tags"] == ["python"]

    listed = (await api.http.get("/snippets", headers=ada)).json()  # cached from here
    assert [item["tags"] for item in listed["items"]] == [["python"], ["algo"]]

    changed = await api.http.patch(
        f"/snippets/{sort['id']}", json={"tags": ["python", "sorting"]}, headers=ada
    )
    assert changed.status_code == 200 and changed.json()["tags"] == ["python", "sorting"]

    listed = (await api.http.get("/snippets", headers=ada)).json()
    assert [item["tags"] for item in listed["items"]] == [["python"], ["python", "sorting"]]
    tagged = (await api.http.get("/snippets?tag=sorting", headers=ada)).json()
    assert [item["title"] for item in tagged["items"]] == ["Sort"] and tagged["total"] == 1
    both = (await api.http.get("/snippets?tag=python&q=sum", headers=ada)).json()
    assert [item["title"] for item in both["items"]] == ["Sum"]
    assert (await api.http.get(f"/snippets/{sort['ref']}", headers=ada)).json()["tags"] == [
        "python",
        "sorting",
    ]
    tags = (await api.http.get("/tags", headers=ada)).json()
    assert tags == [{"tag": "python", "count": 2}, {"tag": "sorting", "count": 1}]


async def test_tag_limits_are_422_and_nothing_is_stored(api: ApiHarness) -> None:
    ada = await api.user(unique("ada"))
    eleven = [f"t{n}" for n in range(11)]

    created = await api.http.post(
        "/snippets", json={"title": "T", "code": "x = 1", "tags": eleven}, headers=ada
    )
    too_long = await api.http.post(
        "/snippets", json={"title": "T", "code": "x = 1", "tags": ["a" * 33]}, headers=ada
    )

    assert created.status_code == too_long.status_code == 422
    assert "at most 10 tags" in json.dumps(created.json())
    assert (await api.http.get("/snippets", headers=ada)).json()["total"] == 0


async def test_revisions_list_view_and_restore(api: ApiHarness) -> None:
    ada = await api.user(unique("ada"))
    snippet = await api.create(ada, "Sort", "def qs(xs):\n    return xs")
    path = f"/snippets/{snippet['id']}"
    await api.http.patch(path, json={"code": "def qs(xs):\n    return sorted(xs)"}, headers=ada)
    await api.http.patch(path, json={"title": "Sorted"}, headers=ada)
    assert (await api.http.get(path, headers=ada)).json()["title"] == "Sorted"  # cached

    revisions = (await api.http.get(f"{path}/revisions", headers=ada)).json()
    assert [(r["number"], r["title"], r["current"]) for r in revisions] == [
        (1, "Sort", False),
        (2, "Sort", False),
        (3, "Sorted", True),
    ]
    assert revisions[1]["first_changed_line"] == "return sorted(xs)"
    assert revisions[0]["code"] is None
    one = (await api.http.get(f"{path}/revisions/1", headers=ada)).json()
    assert one["code"] == "def qs(xs):\n    return xs"

    restored = await api.http.post(f"{path}/revisions/1/restore", headers=ada)
    assert restored.status_code == 200
    assert restored.json()["code"] == "def qs(xs):\n    return xs"
    assert (await api.http.get(path, headers=ada)).json()["title"] == "Sort"  # not the cached
    revisions = (await api.http.get(f"/snippets/{snippet['ref']}/revisions", headers=ada)).json()
    assert len(revisions) == 4 and revisions[-1]["current"]
    missing = await api.http.post(f"{path}/revisions/99/restore", headers=ada)
    assert missing.status_code == 404


async def test_delete_then_undelete_within_ten_minutes(api: ApiHarness) -> None:
    address = unique("ada")
    ada = await api.user(address)
    snippet = await api.create(ada, "Doomed #kept", "def gone():\n    pass")
    path = f"/snippets/{snippet['id']}"
    await api.http.get("/snippets", headers=ada)  # the list is cached

    assert (await api.http.delete(path, headers=ada)).status_code == 204
    await api.deliver_emails()
    assert (await api.http.get(path, headers=ada)).status_code == 404
    assert (await api.http.get("/snippets", headers=ada)).json()["total"] == 0
    assert (await api.http.get("/snippets?q=gone", headers=ada)).json()["total"] == 0
    assert (await api.http.get("/tags", headers=ada)).json() == []

    back = await api.http.post(f"/snippets/{snippet['ref']}/undelete", headers=ada)
    await api.deliver_emails()

    assert back.status_code == 200
    assert back.json()["ref"] == snippet["ref"] and back.json()["tags"] == ["kept"]
    assert (await api.http.get("/snippets", headers=ada)).json()["total"] == 1
    assert len(api.inbox.to(address, "Snippet Deleted")) == 1
    again = await api.http.post(f"{path}/undelete", headers=ada)
    assert again.status_code == 404  # not deleted now

    await api.http.delete(path, headers=ada)
    api.clock.advance(601)
    assert await api.services.organise.purge_deleted() == 1
    late = await api.http.post(f"{path}/undelete", headers=ada)
    assert late.status_code == 404
    assert late.json()["detail"] == "Too late to undo: that snippet is gone for good."


async def test_another_users_snippet_and_versions_are_not_found(api: ApiHarness) -> None:
    ada = await api.user(unique("ada"))
    bob = await api.user(unique("bob"))
    mine = await api.create(ada, "Mine", "secret = 1")
    await api.http.patch(f"/snippets/{mine['id']}", json={"code": "secret = 2"}, headers=ada)
    await api.http.delete(f"/snippets/{mine['id']}", headers=ada)
    await api.http.post(f"/snippets/{mine['id']}/undelete", headers=ada)
    other = str(uuid.uuid4())

    for method, suffix in (
        ("GET", "/revisions"),
        ("GET", "/revisions/1"),
        ("POST", "/revisions/1/restore"),
        ("POST", "/undelete"),
        ("PATCH", ""),
    ):
        body = {"json": {"tags": ["stolen"]}} if method == "PATCH" else {}
        theirs = await api.http.request(
            method, f"/snippets/{mine['id']}{suffix}", headers=bob, **body
        )
        missing = await api.http.request(method, f"/snippets/{other}{suffix}", headers=bob, **body)
        assert theirs.status_code == missing.status_code == 404, (method, suffix)
        assert theirs.json() == missing.json(), (method, suffix)
    assert (await api.http.get("/tags", headers=bob)).json() == []
    assert (await api.http.get("/snippets?tag=stolen", headers=bob)).json()["total"] == 0
    shown = (await api.http.get(f"/snippets/{mine['id']}", headers=ada)).json()
    assert shown["code"] == "secret = 2" and shown["tags"] == []


async def test_export_and_import_round_trip(api: ApiHarness) -> None:
    ada = await api.user(unique("ada"))
    bob = await api.user(unique("bob"))
    sort = await api.create(ada, "Sort #algo", "def qs(xs):\n    return xs")
    await api.http.patch(
        f"/snippets/{sort['id']}", json={"code": "def qs(xs):\n    return sorted(xs)"}, headers=ada
    )
    await api.create(bob, "Already", "x = 1")
    await api.create(ada, "Already", "x = 1")

    exported = await api.http.get("/export", headers=ada)

    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    assert "snippetvault-export.zip" in exported.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(exported.content)).namelist()
    assert sorted(names) == ["Already.txt", "Sort.py", "snippets.json"]

    await api.http.get("/snippets", headers=bob)  # cached
    first = await api.http.post("/import", content=exported.content, headers=bob)
    again = await api.http.post("/import", content=exported.content, headers=bob)

    assert first.json() == {"added": 1, "skipped": 1}
    assert again.json() == {"added": 0, "skipped": 2}
    listed = (await api.http.get("/snippets?tag=algo", headers=bob)).json()
    [item] = listed["items"]
    assert item["title"] == "Sort" and item["ref"] == 2
    assert len((await api.http.get(f"/snippets/{item['id']}/revisions", headers=bob)).json()) == 2


async def test_an_unsafe_archive_is_422_and_nothing_imported(api: ApiHarness) -> None:
    ada = await api.user(unique("ada"))

    for archive, reason in (
        (make_zip(("../evil.py", b"x = 1")), "unsafe path"),
        (make_zip(("snippets.json", b"\n" * (8 * 1024 * 1024))), "zip bomb"),
        (b"not a zip", "not a zip archive"),
        (make_zip(("ok.py", b"x = 1"), ("bad.bin", b"\x00\x01\x02")), "Nothing was imported"),
    ):
        response = await api.http.post("/import", content=archive, headers=ada)
        assert response.status_code == 422, response.text
        assert reason in json.dumps(response.json())
    assert (await api.http.get("/snippets", headers=ada)).json()["total"] == 0


async def test_an_import_over_the_cap_is_413_before_it_is_read(api: ApiHarness) -> None:
    ada = await api.user(unique("ada"))
    response = await api.http.post("/import", content=b"x" * (10 * 1024 * 1024 + 1), headers=ada)
    assert response.status_code == 413
