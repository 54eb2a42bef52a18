"""`compat path` honours the vendor's upgrade rules: per-release minimums, NSX-T hops with
their PKS prerequisites, cross-product ordering, and Ops Manager one minor at a time."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.compat.test_compat_facts import FACTS
from upgrade.cli.main import cli
from upgrade.compat import load_matrix
from upgrade.compat.matrix import Product
from upgrade.core.versions import Version


def v(text: str) -> Version:
    return Version.parse(text)


def path(runner: CliRunner, start: str, goal: str, *extra: str) -> dict[str, object]:
    result = runner.invoke(
        cli, ["compat", "path", "--from", start, "--to", goal, "--format", "json", *extra]
    )
    assert result.exit_code in (0, 4), result.output
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def steps_of(doc: dict[str, object]) -> list[dict[str, object]]:
    steps = doc["steps"]
    assert isinstance(steps, list)
    return steps


def test_done_when_path_is_allowed_by_the_notes_hop_by_hop(runner: CliRunner) -> None:
    """PKS 1.1.4 / NSX-T 2.1 / Ops Manager 2.1.3 to PKS 1.3.5 / NSX-T 2.3.1: through PKS
    1.1.5+, a 1.2.x at or above the 1.3 minimum, and NSX-T 2.2, each step cited."""
    doc = path(runner, "pks=1.1.4,nsxt=2.1,opsman=2.1.3", "pks=1.3.5,nsxt=2.3.1")
    assert doc["found"] is True
    allowed = {f.pks: set(f.from_yes) for f in FACTS}
    pks_seen: list[str] = ["1.1.4"]
    nsxt_seen = []
    for step in steps_of(doc):
        assert isinstance(step, dict)
        source = str(step["source"])
        assert "@" in source and ".html.md.erb" in source, source
        assert step["reason"]
        after = step["state_after"]
        assert isinstance(after, dict)
        checked = runner.invoke(cli, ["compat", "check", "--pks", after["pks"],
                                      "--nsxt", after["nsxt"], "--opsman", after["opsman"]])
        assert checked.exit_code == 0, checked.output
        if step["product"] == "pks":
            # the fact table (typed from the vendor's notes) allows this exact hop
            assert step["from"] in allowed[str(step["to"])], step
            pks_seen.append(str(step["to"]))
        if step["product"] == "nsxt":
            nsxt_seen.append(v(str(step["to"])))
        if step["product"] == "opsman":
            old, new = v(str(step["from"])), v(str(step["to"]))
            assert new.padded(2)[1] - old.padded(2)[1] <= 1  # one minor at a time
            assert not step["warnings"]
    assert any(v(p) >= v("1.1.5") and v(p).within(v("1.1")) for p in pks_seen)
    twelve = [v(p) for p in pks_seen if v(p).within(v("1.2"))]
    assert twelve and max(twelve) >= v("1.2.7")  # 1.3.x accepts 1.2.7 at the earliest
    assert any(n.within(v("2.2")) for n in nsxt_seen)
    assert pks_seen[-1] == "1.3.5" and nsxt_seen[-1] == v("2.3.1")


def test_patch_to_patch_inside_a_series_follows_the_notes(runner: CliRunner) -> None:
    """1.3.0 may not jump to 1.3.5: 1.3.0 -> 1.3.1 -> 1.3.4 -> 1.3.5."""
    doc = path(runner, "pks=1.3.0,nsxt=2.3.1,opsman=2.3.1", "pks=1.3.5,nsxt=2.3.1")
    assert [s["to"] for s in steps_of(doc)] == ["1.3.1", "1.3.4", "1.3.5"]


def test_withdrawn_release_is_never_a_target(runner: CliRunner) -> None:
    """Paths step over 1.1.0 and 1.3.0; asking for them is blocked with the reason."""
    doc = path(runner, "pks=1.0.2,nsxt=2.1,opsman=2.1.0", "pks=1.1,nsxt=2.1")
    assert doc["found"] is True and [s["to"] for s in steps_of(doc)] == ["1.1.1"]
    blocked = path(runner, "pks=1.2.5,nsxt=2.3.1,opsman=2.3.1", "pks=1.3.0,nsxt=2.3.1")
    assert blocked["found"] is False
    reason = blocked["blocked_by"]
    assert isinstance(reason, dict) and "withdrawn" in reason["reason"]


def test_nsxt_24_only_from_231_after_the_pks_tile(runner: CliRunner) -> None:
    """NSX-T 2.3 -> 2.4 from 2.3.1 only, and only once PKS runs 1.3.6+ (the tile first)."""
    doc = path(runner, "pks=1.3.5,nsxt=2.3.0.2,opsman=2.3.1", "pks=1.3,nsxt=2.4")
    steps = steps_of(doc)
    moves = [(s["product"], s["to"]) for s in steps]
    assert moves.index(("nsxt", "2.3.1.0")) < moves.index(("nsxt", "2.4.0.1"))
    assert moves.index(("pks", "1.3.6")) < moves.index(("nsxt", "2.4.0.1"))
    hop = steps[moves.index(("nsxt", "2.4.0.1"))]
    assert "upgrade-pks-nsxt-24.html.md.erb" in str(hop["source"])
    matrix = load_matrix()
    rules = matrix.upgrades[Product.NSXT]
    assert not rules.allows(v("2.3.0.2"), v("2.4.0.1"))


def test_nsxt_25_needs_pks_15_and_ncp_25_first(runner: CliRunner) -> None:
    """The 2.4 -> 2.5 hop comes after PKS 1.5 and says to upgrade every cluster to NCP 2.5."""
    doc = path(runner, "pks=1.4.3,nsxt=2.4.2,opsman=2.5.24", "pks=1.5,nsxt=2.5")
    steps = steps_of(doc)
    assert [(s["product"], s["to"]) for s in steps] == [("pks", "1.5.0"), ("nsxt", "2.5.0.0")]
    assert "NCP 2.5" in str(steps[1]["reason"])
    assert "upgrade-pks-nsxt.html.md.erb L9, L231-236" in str(steps[1]["source"])
    assert any("not confirmable" in w for w in steps[0]["warnings"])  # Pivotal Network cell


def test_pks_124_before_ops_manager_24(runner: CliRunner) -> None:
    """"upgrade PKS to v1.2.4 and then upgrade Ops Manager to v2.4.x"."""
    doc = path(runner, "pks=1.2.3,nsxt=2.3.0.0,opsman=2.3.1", "pks=1.2,nsxt=2.3,opsman=2.4")
    steps = steps_of(doc)
    order = [(s["product"], s["to"]) for s in steps]
    assert order[-1][0] == "opsman" and order[-1][1].startswith("2.4")
    assert ("pks", "1.2.4") in order or any(p == "pks" for p, _ in order[:-1])
    assert "release-notes.html.md.erb L1152-1153" in str(steps[-1]["source"])
    assert "you must upgrade PKS to v1.2.4" in str(steps[-1]["reason"])


def test_strict_path_avoids_disputed_combinations(runner: CliRunner) -> None:
    """--strict takes the conservative reading: no step lands where documents disagree."""
    start = "pks=1.1.4,nsxt=2.1,opsman=2.1.0"
    loose = path(runner, start, "pks=1.2,nsxt=2.3")
    strict = path(runner, start, "pks=1.2,nsxt=2.3", "--strict")
    assert loose["found"] and strict["found"]
    # 1.2.0 itself is out of reach when strict: the upgrade page wants Ops Manager 2.3.1+
    # before any 1.2.x, and no 1.1.x runs on Ops Manager 2.3
    assert not path(runner, start, "pks=1.2.0,nsxt=2.3", "--strict")["found"]
    for step in steps_of(strict):
        assert not [w for w in step["warnings"] if "disagree" in w]
        after = step["state_after"]
        assert isinstance(after, dict)
        args = ["compat", "check", "--strict", "--pks", after["pks"], "--nsxt", after["nsxt"],
                "--opsman", after["opsman"]]
        assert runner.invoke(cli, args).exit_code == 0


def test_path_text_cites_every_step(runner: CliRunner) -> None:
    """Text output: why, source and any warning under each step."""
    args = ["compat", "path", "--from", "pks=1.4.0,nsxt=2.4.0.1,opsman=2.5.24",
            "--to", "pks=1.5,nsxt=2.5"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0
    assert result.output.count("    source: ") == 2
    assert "warning: v1.5.1's Ops Manager list is not confirmable" in result.output
    # 1.4.0 -> 1.5.0 is disputed (the NSX-T page says 1.4.1+): an undisputed hop is preferred
    assert "upgrade PKS 1.4.0 \u2192 1.5.1" in result.output
