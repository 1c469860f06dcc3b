"""The HTML report, opened in headless Chromium (Selenium) and read from the rendered DOM:
its rows and numbers, sorting, filtering, expanding; no console error, no request other
than the file itself; model output shown as text and never run.

Uses Debian's chromium and chromium-driver (``apt-get install chromium chromium-driver``)
with the driver's path given explicitly, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import html as html_module
import json
import os
import re
from pathlib import Path

import pytest
from report_data import FAULT_PLAN, HOSTILE, make_session

from llmcheck.records.schema import SessionRecord
from llmcheck.reports.html import render_html

CHROMIUM = os.environ.get("LLMCHECK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LLMCHECK_CHROMEDRIVER", "/usr/bin/chromedriver")

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install -e '.[dev]')")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"headless Chromium tests need {' and '.join(missing)} "
                    "(Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def session() -> SessionRecord:
    return make_session()


@pytest.fixture(scope="module")
def report_file(session, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "llmcheck.html"
    path.write_text(render_html(session), encoding="utf-8")
    return path


@pytest.fixture
def page(browser, report_file):
    """The report freshly loaded; the logs of the load are available as ``page.logs``."""
    browser.get_log("browser")  # drop what earlier tests left
    browser.get_log("performance")
    browser.get(report_file.as_uri())
    return browser


def visible_rows(driver, table: str) -> list:
    """The rows the page's filters show: those without the ``hidden`` attribute (the
    DOM state the filters set, not selenium's layout-based is_displayed(), which a
    loaded machine can catch mid-layout: 51 of 60 rows once, in CI)."""
    return [r for r in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
            if r.get_attribute("hidden") is None]


def column(driver, table: str, index: int) -> list[str]:
    return [r.find_elements(By.TAG_NAME, "td")[index].text for r in visible_rows(driver, table)]


def test_the_table_shows_every_test_and_its_numbers(page, session):
    rows = visible_rows(page, "tests-table")
    assert len(rows) == len(session.tests)
    for row, t in zip(rows, session.tests, strict=True):
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[1] == t.nodeid
        assert cells[2].split()[0] == f"{t.pass_rate:.2f}"
        assert cells[3] == f"[{t.interval.low:.2f}, {t.interval.high:.2f}]"
        assert cells[4] == f"{t.min_pass_rate:.2f}"
        assert cells[7] == f"{t.run}/{t.planned}"
        assert cells[9] == str(t.errors)
        assert cells[10] == f"${t.usage.cost:.4f}"
    verdicts = column(page, "tests-table", 5)
    assert verdicts == ["PASS", "PASS", "FAIL", "PASS", "FAIL (xfail)"]
    assert column(page, "tests-table", 6) == ["yes", "yes", "yes", "no, n≈139", "yes"]
    cards = {c.find_element(By.CLASS_NAME, "label").text: c.find_element(By.CLASS_NAME, "num").text
             for c in page.find_elements(By.CSS_SELECTOR, ".cards .card")}
    assert cards["LLM tests"] == "5" and cards["passed"] == "3"
    assert cards["failed (1 expected)"] == "2" and cards["inconclusive"] == "1"
    assert cards["model calls"] == str(session.usage.calls)


def test_each_rate_is_drawn_with_its_interval_and_the_required_rate(page, session):
    bars = page.find_elements(By.CSS_SELECTOR, "#tests-table svg.bar")
    assert len(bars) == len(session.tests)
    for bar, t in zip(bars, session.tests, strict=True):
        width = float(bar.get_attribute("width"))
        fill = bar.find_element(By.CSS_SELECTOR, ".fill")
        assert float(fill.get_attribute("width")) == pytest.approx(t.pass_rate * width, abs=0.1)
        required = bar.find_element(By.CSS_SELECTOR, ".req").get_attribute("d")
        assert required.startswith(f"M{t.min_pass_rate * width:.1f}".removesuffix(".0"))
        whisker = bar.find_element(By.CSS_SELECTOR, ".iv").get_attribute("d")
        low, high = map(float, re.match(r"M([\d.]+) 7H([\d.]+)", whisker).groups())
        assert (low, high) == (pytest.approx(t.interval.low * width, abs=0.1),
                               pytest.approx(t.interval.high * width, abs=0.1))


def test_clicking_a_header_sorts_the_table(page, session):
    header = page.find_element(By.XPATH, "//table[@id='tests-table']//th[text()='pass rate']")
    header.click()
    rates = [float(r.split()[0]) for r in column(page, "tests-table", 2)]
    assert rates == sorted(rates) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    rates = [float(r.split()[0]) for r in column(page, "tests-table", 2)]
    assert rates == sorted(rates, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    by_name = page.find_element(By.XPATH, "//table[@id='tests-table']//th[text()='test']")
    by_name.click()
    names = column(page, "tests-table", 1)
    assert names == sorted((t.nodeid for t in session.tests), key=str.lower)
    page.find_element(By.XPATH, "//table[@id='tests-table']//th[text()='#']").click()
    assert column(page, "tests-table", 1) == [t.nodeid for t in session.tests]


def test_the_text_box_filters_the_rows(page):
    box = page.find_element(By.ID, "tests-filter")
    box.send_keys("test_fails")
    assert column(page, "tests-table", 1) == ["suites/test_b.py::test_fails[case-1]",
                                              "suites/test_b.py::test_fails[case-2]"]
    assert page.find_element(By.ID, "tests-table-count").text == "2 of 5"
    box.send_keys("[case-2")
    assert column(page, "tests-table", 1) == ["suites/test_b.py::test_fails[case-2]"]
    box.clear()
    box.send_keys("(XFAIL)")  # the verdict too
    assert column(page, "tests-table", 1) == ["suites/test_c.py::test_known_bad"]
    box.clear()
    box.send_keys("nothing matches this")
    assert visible_rows(page, "tests-table") == []
    box.clear()
    box.send_keys(" ")
    assert len(visible_rows(page, "tests-table")) == 5


def test_the_status_menu_filters_the_rows(page):
    from selenium.webdriver.support.ui import Select

    menu = Select(page.find_element(By.ID, "tests-status"))
    menu.select_by_value("fail")
    assert column(page, "tests-table", 5) == ["FAIL", "FAIL (xfail)"]
    menu.select_by_value("inconclusive")
    assert column(page, "tests-table", 1) == ["suites/test_b.py::test_fails[case-2]"]
    menu.select_by_value("failing-samples")
    assert len(visible_rows(page, "tests-table")) == 4
    menu.select_by_value("")
    assert len(visible_rows(page, "tests-table")) == 5


def test_failure_groups_expand_and_show_their_examples(page, session):
    failing = page.find_elements(By.CSS_SELECTOR, "#failures article")
    # failing tests first, then passing tests with failing samples; the clean one not at all
    ids = [a.find_element(By.TAG_NAME, "code").text for a in failing]
    assert ids == ["suites/test_b.py::test_fails[case-1]", "suites/test_c.py::test_known_bad",
                   "suites/test_a.py::test_hostile[a|b`c]",
                   "suites/test_b.py::test_fails[case-2]"]
    group = failing[0].find_element(By.CSS_SELECTOR, "details.group")
    example = group.find_element(By.CSS_SELECTOR, "ol.examples li")
    assert group.get_attribute("open") is None and not example.is_displayed()
    group.find_element(By.TAG_NAME, "summary").click()
    assert group.get_attribute("open") == "true" and example.is_displayed()
    record = session.tests[2]
    first = record.failure_groups[0]
    assert group.find_element(By.TAG_NAME, "summary").text.startswith(f"{first.count}×")
    assert example.text.startswith(f"sample {first.samples[0]}")
    shown = group.find_elements(By.CSS_SELECTOR, "ol.examples li")
    assert len(shown) == min(5, first.count)
    assert f"{first.count - 5} more sample(s)" in group.text
    page.find_element(By.CSS_SELECTOR, "button[data-expand=failures]").click()
    details = page.find_elements(By.CSS_SELECTOR, "#failures details")
    assert details and all(d.get_attribute("open") == "true" for d in details)
    page.find_element(By.CSS_SELECTOR, "button[data-collapse=failures]").click()
    assert not any(d.get_attribute("open") for d in details)


def test_a_test_link_opens_its_failures(page):
    page.find_element(By.LINK_TEXT, "suites/test_b.py::test_fails[case-1]").click()
    article = page.find_element(By.ID, "t-3")
    assert article.find_element(By.CSS_SELECTOR, "details").get_attribute("open") == "true"


def test_model_output_is_text_and_never_runs(page):
    """The payloads would set window.__pwned, change the title or open an alert."""
    assert page.execute_script("return window.__pwned === undefined")
    assert page.title == "llmcheck report: openai/m"
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018
    page.find_element(By.CSS_SELECTOR, "button[data-expand=failures]").click()
    hostile = page.find_element(By.ID, "t-2")
    assert HOSTILE in hostile.text  # the exact text, shown
    # no element came out of the payloads: only llmcheck's own script, no img anywhere
    assert len(page.find_elements(By.TAG_NAME, "script")) == 1
    assert page.find_elements(By.TAG_NAME, "img") == []
    assert page.find_elements(By.CSS_SELECTOR, "b") == []
    assert page.execute_script("return window.__pwned === undefined")
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018
    warning = page.find_element(By.CSS_SELECTOR, ".notes .warning")
    assert "<script>alert(4)</script> | pipe" in warning.text


def test_no_console_errors_and_no_request_but_the_file(page, report_file):
    page.find_element(By.CSS_SELECTOR, "button[data-expand=failures]").click()
    page.find_element(By.XPATH, "//table[@id='tests-table']//th[text()='cost']").click()
    severe = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    urls = []
    for entry in page.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert urls and set(urls) == {report_file.as_uri()}, urls


def test_a_large_session_stays_usable(browser, tmp_path):
    """Examples are capped per failure group and the page still sorts and filters."""
    from report_data import make_test

    tests = [make_test(f"suites/test_big.py::test_case[{i}]", "PF" * 30) for i in range(60)]
    session = SessionRecord.assemble(tests, seed=1, started=make_session().started)
    path = tmp_path / "big.html"
    path.write_text(render_html(session), encoding="utf-8")
    browser.get(path.as_uri())
    assert len(visible_rows(browser, "tests-table")) == 60
    examples = browser.find_elements(By.CSS_SELECTOR, "#t-1 ol.examples li")
    assert len(examples) == 5
    assert "25 more sample(s) with this message not shown" in \
        browser.find_element(By.ID, "t-1").get_attribute("textContent")
    box = browser.find_element(By.ID, "tests-filter")
    box.send_keys("[59]")
    assert column(browser, "tests-table", 1) == ["suites/test_big.py::test_case[59]"]


def test_the_script_and_style_are_pinned_by_the_policy(report_file):
    """The page's Content-Security-Policy allows no request and only its own script."""
    html = report_file.read_text(encoding="utf-8")
    csp = html_module.unescape(
        re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp and "http" not in csp


def test_histograms_count_every_value_and_cap_the_tail():
    from llmcheck.reports.html import HIST_BINS, histogram

    values = [0.01 * i for i in range(1, 100)] + [50.0]  # one far outlier
    h = histogram("latency", values, lambda x: f"{x:.2f}", "calls")
    counts = [int(re.search(r": (\d+) calls", b.title).group(1)) for b in h.bars]
    assert sum(counts) == len(values) and len(h.bars) <= HIST_BINS
    assert h.axis[-1][1].endswith("+") and h.bars[-1].title.split(":")[0].endswith("+")
    assert h.summary.startswith("100 calls: median 0.5") and "max 50.00" in h.summary
    assert histogram("cost", [], str, "samples").empty == "no samples recorded"
    assert histogram("cost", [0.0, 0.0], str, "samples").empty == "every value is 0.0"


# -- faults injected -----------------------------------------------------------------

@pytest.fixture(scope="module")
def fault_session() -> SessionRecord:
    return make_session(faults=True)


@pytest.fixture(scope="module")
def fault_file(fault_session, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html-faults") / "llmcheck.html"
    path.write_text(render_html(fault_session), encoding="utf-8")
    return path


@pytest.fixture
def fault_page(browser, fault_file):
    browser.get_log("browser")
    browser.get_log("performance")
    browser.get(fault_file.as_uri())
    return browser


def test_a_report_without_faults_has_no_fault_markup(report_file):
    html = report_file.read_text(encoding="utf-8")
    # the stylesheet names the classes, unused; the script says preventDefault
    body = html.split("</style>", 1)[1].split("<script>", 1)[0]
    assert "fault" not in body.lower()


def test_the_fault_table_is_in_the_html_and_escaped(fault_file):
    html = fault_file.read_text(encoding="utf-8")
    assert html.count('<table class="sortable faults-table">') == 2  # section + failures
    assert 'id="f-6"' in html and 'href="#f-6"' in html
    assert "<td>10/11 when rate-limited</td>" in html
    assert "<td>3/4 on timeouts (1 error)</td>" in html
    import markupsafe

    assert str(markupsafe.escape(FAULT_PLAN)) in html  # the plan, escaped
    # no payload came through as markup: one script (llmcheck's), no img, no b
    assert html.count("<script") == 1 and "<img" not in html and "<b>" not in html


def test_the_faults_section_shows_each_kind_with_its_bar(fault_page, fault_session):
    t = fault_session.tests[-1]
    article = fault_page.find_element(By.ID, "f-6")
    assert article.find_element(By.CSS_SELECTOR, "h3 code").text == t.nodeid
    plan = article.find_element(By.CSS_SELECTOR, "p.fault-plan code")
    assert plan.text == FAULT_PLAN  # shown verbatim, as text
    rows = article.find_elements(By.CSS_SELECTOR, "table.faults-table tbody tr")
    assert len(rows) == len(t.faults)
    for row, f in zip(rows, t.faults, strict=True):
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[0].split()[0] == f.kind
        assert cells[1:6] == [str(f.samples), str(f.passed), str(f.failed), str(f.errors),
                              str(f.recovered)]
        assert cells[6].split()[-1] == f"{f.pass_rate:.2f}"
        assert cells[7] == f"[{f.interval.low:.2f}, {f.interval.high:.2f}]"
        bar = row.find_element(By.CSS_SELECTOR, "svg.bar")
        width = float(bar.get_attribute("width"))
        fill = bar.find_element(By.CSS_SELECTOR, ".fill")
        assert float(fill.get_attribute("width")) == pytest.approx(f.pass_rate * width, abs=0.1)
        required = bar.find_element(By.CSS_SELECTOR, ".req").get_attribute("d")
        assert required.startswith(f"M{t.min_pass_rate * width:.1f}".removesuffix(".0"))
    assert [r.find_elements(By.TAG_NAME, "td")[8].text for r in rows] == [
        "10/11 when rate-limited", "3/4 on timeouts (1 error)", "1/1 on server errors",
        "14/14 with no fault"]
    # the test's failures repeat its fault table
    failures = fault_page.find_element(By.ID, "t-6")
    assert len(failures.find_elements(By.CSS_SELECTOR, "table.faults-table tbody tr")) == 4


def test_the_faults_badge_marks_the_test_and_the_menu_filters_on_it(fault_page):
    from selenium.webdriver.support.ui import Select

    badges = fault_page.find_elements(By.CSS_SELECTOR, "#tests-table a.badge.faults")
    assert len(badges) == 1 and badges[0].text == "faults"
    assert badges[0].get_attribute("title") == "faults injected: " + FAULT_PLAN
    Select(fault_page.find_element(By.ID, "tests-status")).select_by_value("faults")
    rows = visible_rows(fault_page, "tests-table")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["6"]
    badges[0].click()
    assert fault_page.current_url.endswith("#f-6")


def test_fault_text_never_runs(fault_page):
    fault_page.find_element(By.CSS_SELECTOR, "button[data-expand=failures]").click()
    assert fault_page.execute_script("return window.__pwned === undefined")
    assert fault_page.title == "llmcheck report: openai/m"
    with pytest.raises(NoAlertPresentException):
        fault_page.switch_to.alert.text  # noqa: B018
    assert len(fault_page.find_elements(By.TAG_NAME, "script")) == 1
    assert fault_page.find_elements(By.TAG_NAME, "img") == []
    assert fault_page.find_elements(By.CSS_SELECTOR, "b") == []
    severe = [e for e in fault_page.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
