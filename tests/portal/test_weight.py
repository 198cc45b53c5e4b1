"""The home page stays light on a phone: its HTML plus the CSS and JavaScript it links, as sent compressed."""

import gzip
import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db
BUDGET = 300 * 1024  # bytes, compressed


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))  # as whitenoise serves static files


def linked_assets(html: str) -> list[str]:
    """The stylesheets and scripts a page links (their URL paths)."""
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    scripts = re.findall(r'<script src="([^"]+)"', html)
    return styles + scripts


def static_file(url: str) -> bytes:
    assert url.startswith(settings.STATIC_URL), f"{url} is not served by this site"
    path = finders.find(url.removeprefix(settings.STATIC_URL))
    assert isinstance(path, str), url
    with open(path, "rb") as file:
        return file.read()


def test_the_home_page_with_its_css_and_js_weighs_under_300_kb_compressed(member_client, history, record_property):
    html = member_client.get(reverse("portal:home")).content

    assets = linked_assets(html.decode())
    sizes = {"html": gzipped(html)} | {url: gzipped(static_file(url)) for url in assets}
    total = sum(sizes.values())

    record_property("home_page_weight_bytes", total)
    print(f"home page weight: {total / 1024:.1f} KB compressed ({', '.join(f'{k} {v} B' for k, v in sizes.items())})")
    assert any(url.endswith(".css") for url in assets) and any(url.endswith(".js") for url in assets)
    assert total < BUDGET
