"""docs/operator/admin.md quotes the console's header and page title as the admin site sets
them (its header on every page, its title at the end of every page's <title>)."""

from django.contrib import admin
from django.test import Client

from tests.conftest import REPO


def test_admin_md_quotes_the_consoles_header_and_title(client: Client) -> None:
    page = " ".join((REPO / "docs" / "operator" / "admin.md").read_text(encoding="utf-8").split())
    site = admin.site
    assert f'"{site.site_header}" in every header, "{site.site_title}" at the end' in page
    login = client.get("/admin/login/").content.decode()
    assert f"| {site.site_title}</title>" in login and str(site.site_header) in login
