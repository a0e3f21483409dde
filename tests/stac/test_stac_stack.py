"""The test stack itself behaves like Planetary Computer's API (same software, same layout)."""

import pytest
import requests

pytestmark = pytest.mark.network


def test_collections_and_items_in_pc_layout(stac_stack):
    cols = {c["id"] for c in requests.get(f"{stac_stack.url}/collections", timeout=10).json()["collections"]}
    assert cols == {"naip", "sentinel-2-l2a"}
    item = requests.get(f"{stac_stack.url}/collections/naip/items?limit=1", timeout=10).json()["features"][0]
    assert set(item["assets"]["image"]) >= {"href", "eo:bands"}
    assert "raster:bands" not in item["assets"]["image"]
    assert isinstance(item["properties"]["naip:year"], str)


def test_cloud_cover_is_numeric_thanks_to_queryables(stac_stack):
    body = {"collections": ["sentinel-2-l2a"], "filter-lang": "cql2-json",
            "filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 10]}}
    got = requests.post(f"{stac_stack.url}/search", json=body, timeout=10).json()["features"]
    # 5.0 and 1.0 pass; 40.0 and 12.5 do not (as text, "12.5" <= "10" would differ)
    assert sorted(f["properties"]["eo:cloud_cover"] for f in got) == [1.0, 5.0]


def test_asset_server_answers_ranges(stac_stack, assets):
    href = stac_stack.s2[0]["assets"]["B04"]["href"]
    url = dict(assets.blob_rewrite())["https://sentinel2l2a01.blob.core.windows.net/"] + href.split(".net/", 1)[1]
    assert requests.get(url, timeout=5).status_code == 403  # unsigned
    tok = requests.get(f"{assets.sas_url}/sentinel2l2a01/sentinel2-l2", timeout=5).json()["token"]
    r = requests.get(f"{url}?{tok}", headers={"Range": "bytes=0-9"}, timeout=5)
    assert r.status_code == 206 and r.content[:4] == b"II*\x00" and len(r.content) == 10
