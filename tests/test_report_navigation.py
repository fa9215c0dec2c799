"""The glossary page (ecrm_research.report.glossary) and the navigation bar with the table of
contents that every rendered report gets (ecrm_research.report.render.add_navigation)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ecrm_research.report import glossary
from ecrm_research.report.glossary import GLOSSARY, GLOSSARY_PAGE, glossary_anchor, render_glossary, write_glossary
from ecrm_research.report.render import NO_SCRIPT_CSP, add_navigation

#: the terms the issue asks the glossary to explain (issue 16, "Teaching material")
REQUIRED_TERMS = ("Support", "Confidence", "Lift", "Leverage", "Conviction", "Hazard", "Censoring", "Hazard ratio",
                  "Concordance", "Schoenfeld residual", "Cronbach's alpha", "Composite reliability (CR)",
                  "Average variance extracted (AVE)", "HTMT", "Silhouette", "Adjusted Rand index (ARI)", "RFM",
                  "Customer lifetime value (CLV)")

#: the markup nbconvert 7 (lab template) writes for a notebook with markdown headings, trimmed
NBCONVERT_LIKE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8" />
<title>02_churn_survival</title><style>main { margin: 0 }</style>
</head>
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<main>
<div class="jp-Cell jp-MarkdownCell jp-Notebook-cell" id="cell-id=1">
<h1 id="Churn-and-survival">Churn and survival<a class="anchor-link" href="#Churn-and-survival">¶</a></h1>
<h2 id="Step-1:-the-data-&amp;-the-window">Step 1: the data &amp; the window<a class="anchor-link" href="#Step-1:-the-data-&amp;-the-window">¶</a></h2>
<p>text</p>
<h3 id="Censoring-matters">Censoring <em>matters</em><a class="anchor-link" href="#Censoring-matters">¶</a></h3>
<h3 id="Kaplan–Meier">Kaplan–Meier<a class="anchor-link" href="#Kaplan–Meier">¶</a></h3>
<h2 id="Step-2:-Cox-model">Step 2: Cox model<a class="anchor-link" href="#Step-2:-Cox-model">¶</a></h2>
<h4 id="Deep">Deep<a class="anchor-link" href="#Deep">¶</a></h4>
<h2 id="Key-takeaways">Key takeaways<a class="anchor-link" href="#Key-takeaways">¶</a></h2>
</div>
</main>
</body>
</html>
"""


class _Tags(HTMLParser):
    """Open/close balance of the list tags and the links, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = {"ol": 0, "li": 0}
        self.negative = False
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.depth:
            self.depth[tag] += 1
        if tag == "a":
            self.links.append(dict(attrs).get("href", ""))

    def handle_endtag(self, tag):
        if tag in self.depth:
            self.depth[tag] -= 1
            self.negative |= self.depth[tag] < 0


def _toc(html: str) -> str:
    m = re.search(r'<details class="ecrm-toc".*?</details>', html, re.S)
    assert m, "no table of contents"
    return m.group(0)


def _balanced(fragment: str) -> bool:
    p = _Tags()
    p.feed(fragment)
    return not p.negative and p.depth == {"ol": 0, "li": 0}


# --------------------------------------------------------------------------- glossary


def test_every_term_has_a_unique_anchor_and_the_required_terms_are_there():
    terms = [t for t, _, _ in GLOSSARY]
    anchors = [glossary_anchor(t) for t in terms]
    assert len(set(terms)) == len(terms)
    assert len(set(anchors)) == len(anchors), sorted(a for a in anchors if anchors.count(a) > 1)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", a) for a in anchors)
    assert set(REQUIRED_TERMS) <= set(terms)
    page = render_glossary()
    ids = re.findall(r'<dt id="([^"]+)">', page)
    assert ids == [glossary_anchor(t) for t in sorted(terms, key=str.lower)]  # every term, alphabetical
    assert glossary_anchor("Lift") == "lift" and glossary_anchor("Cronbach's alpha") == "cronbach-s-alpha"
    for _, definition, notebook in GLOSSARY:
        assert definition.strip().endswith(".") and re.fullmatch(r"0[0-5]_[a-z_]+", notebook)


def test_glossary_page_has_the_csp_escapes_and_links_home(tmp_path, monkeypatch):
    page = render_glossary()
    assert page.startswith("<!DOCTYPE html>") and NO_SCRIPT_CSP in page
    assert page.index(NO_SCRIPT_CSP) < page.index("</head>")
    assert "<script" not in page.lower()
    assert '<a href="index.html">' in page
    assert "A ⇒ B" in page and "Cronbach&#x27;s alpha" in page  # text escaped, unicode kept
    evil = "<img src=x onerror=alert(1)>"
    monkeypatch.setattr(glossary, "GLOSSARY", GLOSSARY + ((evil, f"Means {evil} & more.", "00_overview"),))
    page = render_glossary()
    assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page and "&amp; more" in page
    path = write_glossary(tmp_path / "site")
    assert path == tmp_path / "site" / GLOSSARY_PAGE and path.read_text(encoding="utf-8") == page


# --------------------------------------------------------------------------- navigation


def test_navigation_links_back_to_the_index_the_glossary_and_the_other_version():
    html = add_navigation(NBCONVERT_LIKE, kind="reader")
    nav = re.search(r'<nav class="ecrm-nav"[^>]*>(.*?)</nav>', html, re.S).group(1)
    assert '<a class="ecrm-back" href="../index.html">' in nav
    assert '<a href="../glossary.html">Glossary</a>' in nav
    assert '<a href="report_student.html">' in nav and "explore.html" not in html
    # inserted at the top of the body, before the notebook
    assert html.index('<nav class="ecrm-nav"') == html.index('JupyterLab Light">') + len('JupyterLab Light">')
    assert html.index("</nav>") < html.index("<main>")
    student = add_navigation(NBCONVERT_LIKE, kind="student")
    assert '<a href="report.html">Report without code</a>' in student and "report_student.html" not in student


def test_explore_link_only_when_the_notebook_wrote_the_page():
    assert 'href="explore.html"' not in add_navigation(NBCONVERT_LIKE, explore=False)
    assert add_navigation(NBCONVERT_LIKE, explore=True).count('<a href="explore.html">') == 1


def test_contents_list_the_h2_and_h3_anchors_nested():
    toc = _toc(add_navigation(NBCONVERT_LIKE))
    p = _Tags()
    p.feed(toc)
    assert p.links == ["#Step-1:-the-data-&-the-window", "#Censoring-matters", "#Kaplan–Meier",
                       "#Step-2:-Cox-model", "#Key-takeaways"]  # h1 and h4 are not listed
    assert "Step 1: the data &amp; the window</a>" in toc  # text re-escaped once, no pilcrow
    assert "¶" not in toc and "<em>" not in toc and ">Censoring matters</a>" in toc  # tags dropped from labels
    assert re.search(r'<li><a href="#Step-1[^"]*">[^<]*</a><ol><li><a href="#Censoring', toc)  # h3 inside the h2
    assert _balanced(toc)


def test_navigation_is_idempotent_and_without_headings_has_no_contents():
    once = add_navigation(NBCONVERT_LIKE, explore=True)
    assert add_navigation(once, explore=True) == once
    assert add_navigation(once, kind="student") == once
    bare = add_navigation("<html><body><p>no headings</p></body></html>")
    assert "ecrm-toc" not in bare and 'href="../index.html"' in bare
    assert add_navigation("<p>fragment</p>").startswith('<nav class="ecrm-nav"')


def test_contents_stay_well_formed_when_a_subsection_comes_first():
    html = add_navigation('<html><body><h3 id="a">A</h3><h2 id="b">B</h2></body></html>')
    assert _balanced(_toc(html))
