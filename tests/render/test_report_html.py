"""The HTML (and markdown) report of a failed run, and of a large one (issue 21 item 11).

* A run that failed under ``on_error: abort`` did not pause: its stop is named at the
  top ("Stopped: ..."), not listed under Pauses nor drawn as a pause band; the phase
  it stopped in reads "failed", not "stopped"; the duration reads "ran 1:24:00 before
  it failed", not "took 1:24:00 (planned 2:31:00)" like an early finish; and the page
  says what to do next, as the run and ``status`` do.
* A run of many hosts rolls them up per group: one Gantt row and one ``<details>``
  per group (expands on click, no script), so the page stays short; a group with a
  failure starts open.
Through the CLI, with real files; Chromium renders the failed run's page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.run_support import copy_playbooks, edit, nsxt
from upgrade.render.report_html import UNIT_ROWS_MAX

PAUSE_BAND = 'fill="#ffe0b2"><title>paused'


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab with esx-03's upgrade failing and ``on_error: abort``: exit 1 at 1:24:00."""
    tmp = tmp_path_factory.mktemp("failed")
    books = copy_playbooks(tmp)
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text() + "faults:\n  - {unit: esx-03, op: upgrade, "
                         "kind: fail}\n")
    book = edit(books / "lab-2.1-to-2.3.yaml", "on_error: pause\nretries: 2\n",
                "on_error: abort\nretries: 0\n")
    state = tmp / "state"
    ran = nsxt("run", book, "--yes", "--state-dir", state)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    return state


def test_the_html_report_of_a_failed_run_names_the_stop_not_a_pause(
        failed_run: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert nsxt("report", "--state-dir", failed_run, "-o", page).returncode == 0
    html = page.read_text(encoding="utf-8")
    assert "<h2>Pauses</h2><p class=\"muted\">No pauses.</p>" in html
    assert PAUSE_BAND not in html
    assert "run stopped: esx-03 failed" in html  # the red line where it stopped
    assert ("<strong>Stopped:</strong> esx-03 failed: upgrade on esx-03 failed (simulated "
            "fault) (the run stopped at 1:24:00: on_error: abort)") in html
    resume = f"nsxt-upgrade resume --state-dir {failed_run} --retry-failed"
    assert f"<strong>Next:</strong> fix the cause, then `{resume}`" in html
    assert re.search(r"<td>hosts</td>(<td>[^<]*</td>){4}<td>failed</td>", html)
    assert ">stopped<" not in html
    assert ("ran 1:24:00 before it failed (2/8 units done; the whole upgrade was planned "
            "at 2:31:00)") in html
    assert "took 1:24:00" not in html
    assert "<script" not in html.lower()
    # the run's last line, status and the report say the same next command
    told = nsxt("status", "--state-dir", failed_run).stdout.rstrip("\n").splitlines()[-1]
    assert told == f"fix the cause, then `{resume}`"

    markdown = nsxt("report", "--state-dir", failed_run, "--format", "markdown").stdout
    assert f"**Next:** {told}" in markdown and "**Stopped:** esx-03 failed" in markdown
    assert "## Pauses\n\nNo pauses." in markdown
    assert "| hosts | 0:36:00 | 1:04:00 | 0:36:00 | - | failed | 2/4 |" in markdown


def test_chromium_renders_the_failed_run(failed_run: Path, tmp_path: Path) -> None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    page = tmp_path / "report.html"
    assert nsxt("report", "--state-dir", failed_run, "-o", page).returncode == 0
    dom = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr
    assert "Stopped:" in dom.stdout and "Next:" in dom.stdout
    assert "<details open=\"\">" in dom.stdout  # the small run's groups are open


def _site(directory: Path, clusters: int, hosts_per: int) -> Path:
    """A site of ``clusters`` clusters of ``hosts_per`` hosts; one host's upgrade fails."""
    books = copy_playbooks(directory)
    lines = ['nsx: {version: "2.1.0.0", manager: nsx-mgr-01, controllers: [ctrl-01],',
             '      edge_clusters: [{name: ec-1, edges: [edge-1, edge-2]}]}',
             'compute:', '  clusters:']
    for c in range(clusters):
        lines += [f"    - name: cl-{c}", "      drs: fully_automated", "      hosts:"]
        lines += [f"        - {{id: h-{c}-{h}, vms: [vm-{c}-{h}]}}" for h in range(hosts_per)]
    lines += ["faults:", "  - {unit: h-2-7, op: upgrade, kind: fail}"]
    (books / "many.yaml").write_text("\n".join(lines) + "\n")
    return edit(books / "lab-2.1-to-2.3.yaml", "lab-inventory.yaml", "many.yaml")


def test_a_large_run_rolls_hosts_up_per_group(tmp_path: Path) -> None:
    clusters, per = 6, 40
    book = edit(_site(tmp_path, clusters, per), "  mode: serial\n",
                "  mode: parallel\n  max_parallel: 5\n  max_parallel_groups: 5\n")
    edit(book, "retries: 2\n", "retries: 0\nmax_fail_percentage: {hosts: 5}\n")
    state = tmp_path / "state"
    ran = nsxt("run", book, "--yes", "--state-dir", state, timeout=120)
    assert ran.returncode == 3, ran.stdout + ran.stderr  # the failed host waits
    page = tmp_path / "report.html"
    assert nsxt("report", "--state-dir", state, "-o", page).returncode == 0
    html = page.read_text(encoding="utf-8")
    hosts = clusters * per
    assert hosts > UNIT_ROWS_MAX
    # the Gantt: one row per group, none per host
    assert all(f">cl-{c} ({per})</text>" in html for c in range(clusters))
    assert ">h-0-0</text>" not in html
    # the units table: one <details> per group; only the group with the failure is open
    groups = html.count("<details><summary><strong>") + html.count(
        "<details open><summary><strong>")
    assert groups == clusters + 3  # + the edge cluster, the controllers and the manager
    assert html.count("<details open>") == 1
    # the long vMotions table (DRS moved every host's VM) is folded too
    assert "<h2>vMotions</h2><details><summary>" in html
    opened = html[html.index("<details open>"):]
    assert opened.startswith("<details open><summary><strong>hosts \u00b7 cl-2</strong>: "
                             f"{per} units, <span class=\"bad\">1 failed, {per - 1} upgraded"
                             "</span>")
    assert "<td>h-0-0</td>" in html  # every unit is still there, folded
    assert "<script" not in html.lower()
    # a page, not a scroll: the SVG's height does not grow with the hosts
    height = int(re.search(r'<svg [^>]*height="(\d+)"', html).group(1))  # type: ignore[union-attr]
    assert height < 40 * 26
