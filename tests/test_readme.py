"""The README a newcomer reads first: every chapter linked, a short results section rendered from results/."""

import re

import fer_utils as fu
from tests.scripts import load_script

README = (fu.PROJECT_ROOT / "README.md").read_text()


def test_the_readme_links_every_chapter_and_no_missing_one():
    chapters = {p.name for p in (fu.PROJECT_ROOT / "notebooks").glob("[0-9]*.ipynb")}
    linked = set(re.findall(r"\(notebooks/([^)]+\.ipynb)\)", README))
    assert linked == chapters


def test_the_results_section_is_short_and_is_what_the_records_render():
    section = README.split("<!-- results:start -->")[1].split("<!-- results:end -->")[0]
    assert len(section.split()) < 250
    assert section.strip() == load_script("render_readme").render().strip()
