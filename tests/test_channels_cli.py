"""CLI tests of `clvtool channels` (and the acquisition columns of `customers`) via CliRunner (PRODUCT §4.2, §6).

Every test runs in its own empty working directory (conftest), so files are written with relative names.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from clvtool.cli import app

CHANNEL_COLUMNS = [
    "channel", "spend", "unallocated", "new_customers", "cac", "mean_historic_clv", "ltv_cac",
    "median_payback_days", "repeat_rate", "revenue", "roas", "net_value",
]  # fmt: skip

# Data 2024-01-05 .. 2024-04-01 (as-of), periods 2024-01 .. 2024-04 in range.
#   a google   01-05: 100, 03-01: 50   clv 150      b Google   01-20: 70   clv 70
#   c facebook 02-10: 40, 04-01: 90    clv 130      d (none)   02-03: 25   clv 25 (unattributed)
#   e " google " 03-05: 200            clv 200
TX = """\
customer_id,order_id,date,amount,channel
a,o1,2024-01-05,100,google
b,o3,2024-01-20,70,Google
d,o6,2024-02-03,25,
c,o4,2024-02-10,40,facebook
a,o2,2024-03-01,50,google
e,o7,2024-03-05,200, google 
c,o5,2024-04-01,90,facebook
"""  # noqa: W291

# Channel mode:
#   2024-01 google 300     -> a, b: 150 each
#   2024-02 Facebook 120   -> c: 120
#   2024-02 " GOOGLE " 90  -> no new google customer in Feb: unallocated
#   2024-03 google 50      -> e: 50
#   2024-03 tiktok 33.33   -> no tiktok customer ever: unallocated
#   2024-05 google 70      -> after the as-of month: unallocated
# total 663.33 = allocated 470 (300+120+50) + unallocated 193.33 (90+33.33+70)
SPEND = """\
date,channel,spend
2024-01,google,300
2024-02,Facebook,120
2024-02, GOOGLE ,90
2024-03,google,50
2024-03,tiktok,33.33
2024-05,google,70
"""

# Per channel, channel mode (hand-computed):
#   google: spend 300+90+50+70 = 510, unallocated 90+70 = 160, new a,b,e = 3, cac (150+150+50)/3 = 116.67,
#     mean clv (150+70+200)/3 = 140, ltv_cac 140/116.67 = 1.20, payback a 56 (01-05 -> 03-01), b never,
#     e 0 -> median 56, repeat 1/3, revenue 420, roas 420/510 = 0.82, net 0 - 80 + 150 = 70
#   facebook: 120, 0, 1, 120, 130, 130/120 = 1.08, c 51 (02-10 -> 04-01), 1.0, 130, 1.08, 10
#   tiktok: 33.33, 33.33, 0, no cac
#   unattributed: 0, 0, 1, cac 0, 25, no ltv_cac, payback 0, 0.0, 25, no roas, 25
EXPECTED_CSV = {
    "google": ["510.00", "160.00", "3", "116.67", "140.00", "1.20", "56", "0.333333", "420.00", "0.82", "70.00"],
    "facebook": ["120.00", "0.00", "1", "120.00", "130.00", "1.08", "51", "1.000000", "130.00", "1.08", "10.00"],
    "unattributed": ["0.00", "0.00", "1", "0.00", "25.00", "", "0", "0.000000", "25.00", "", "25.00"],
}  # fmt: skip
ORDER = ["google", "facebook", "tiktok", "unattributed"]  # by spend, largest first
TOTALS_LINE = "clvtool: spend 663.33 = allocated 470.00 + unallocated 193.33"


def run(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def write(name: str, text: str) -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def csv_rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result


def fails(result: Result, code: int = 1) -> Result:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 1
    assert lines[-1].startswith("clvtool: error:")
    return result


@pytest.fixture
def files() -> tuple[str, str]:
    return write("tx.csv", TX), write("spend.csv", SPEND)


def by_channel(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    return {r["channel"].lower(): [r[c] for c in CHANNEL_COLUMNS[1:]] for r in rows}


def check_channel_rows(rows: list[dict[str, str]]) -> None:
    assert [r["channel"].lower() for r in rows] == ORDER
    got = by_channel(rows)
    for name, expected in EXPECTED_CSV.items():
        assert got[name] == expected, name
    tiktok = dict(zip(CHANNEL_COLUMNS[1:], got["tiktok"], strict=True))
    assert tiktok["spend"] == "33.33"
    assert tiktok["unallocated"] == "33.33"
    assert tiktok["new_customers"] == "0"
    assert tiktok["cac"] == ""  # no customer: empty, never 0
    assert tiktok["ltv_cac"] == ""


# ---- formats ---------------------------------------------------------------------------------------


def test_csv_table_with_totals_line_on_stderr(files: tuple[str, str]) -> None:
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend, "-f", "csv"))
    assert result.stdout.splitlines()[0] == ",".join(CHANNEL_COLUMNS)
    check_channel_rows(csv_rows(result.stdout))
    # stdout is data only; the reconciliation goes to stderr.
    assert "spend 663.33" not in result.stdout
    assert TOTALS_LINE in result.stderr.splitlines()


def test_csv_is_the_default_off_a_terminal(files: tuple[str, str]) -> None:
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend))
    assert result.stdout == ok(run("channels", tx, "--spend", spend, "-f", "csv")).stdout


def test_tsv(files: tuple[str, str]) -> None:
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend, "-f", "tsv"))
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == CHANNEL_COLUMNS
    assert len(lines) == 5
    check_channel_rows(csv_rows(result.stdout, "\t"))


def test_json_is_one_object_with_channels_periods_unallocated_and_totals(files: tuple[str, str]) -> None:
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend, "-f", "json"))
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    assert list(data) == ["channels", "by_period", "unallocated", "totals"]

    channels = data["channels"]
    assert [c["channel"].lower() for c in channels] == ORDER
    assert all(list(c) == CHANNEL_COLUMNS for c in channels)
    google = channels[0]
    assert google["spend"] == pytest.approx(510.0)
    assert google["unallocated"] == pytest.approx(160.0)
    assert google["new_customers"] == 3
    assert google["cac"] == pytest.approx(116.67)
    assert google["ltv_cac"] == pytest.approx(1.2)
    assert google["median_payback_days"] == 56
    assert channels[2]["cac"] is None  # tiktok

    periods = {(p["channel"].lower(), p["period"]): p for p in data["by_period"]}
    assert set(periods) == {
        ("google", "2024-01"),
        ("google", "2024-02"),
        ("google", "2024-03"),
        ("google", "2024-05"),
        ("facebook", "2024-02"),
        ("tiktok", "2024-03"),
        ("unattributed", "2024-02"),
    }
    assert periods[("google", "2024-01")]["spend"] == pytest.approx(300.0)
    assert periods[("google", "2024-01")]["new_customers"] == 2
    assert periods[("google", "2024-01")]["cac"] == pytest.approx(150.0)
    assert periods[("google", "2024-02")]["new_customers"] == 0
    assert periods[("google", "2024-02")]["cac"] is None

    unallocated = [(u["channel"].lower(), u["period"], u["spend"]) for u in data["unallocated"]]
    assert unallocated == [
        ("google", "2024-02", 90.0),
        ("tiktok", "2024-03", 33.33),
        ("google", "2024-05", 70.0),
    ]
    assert all(list(u) == ["channel", "period", "spend", "reason"] for u in data["unallocated"])
    reasons = [u["reason"] for u in data["unallocated"]]
    assert "no new customers" in reasons[0]
    assert "no customer" in reasons[1]
    assert "range" in reasons[2]

    totals = data["totals"]
    assert list(totals) == ["spend", "allocated", "unallocated", "new_customers", "blended_cac", "paid_cac"]
    assert totals["spend"] == pytest.approx(663.33)
    assert totals["allocated"] == pytest.approx(470.0)
    assert totals["unallocated"] == pytest.approx(193.33)
    assert totals["new_customers"] == 5
    assert totals["blended_cac"] == pytest.approx(132.67)  # 663.33 / 5 = 132.666
    assert isinstance(totals["paid_cac"], float)


def test_jsonl_is_one_channel_per_line(files: tuple[str, str]) -> None:
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend, "-f", "jsonl"))
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 4
    assert all(isinstance(r, dict) and list(r) == CHANNEL_COLUMNS for r in records)
    assert [r["channel"].lower() for r in records] == ORDER
    assert records[1]["cac"] == pytest.approx(120.0)
    assert records[1]["roas"] == pytest.approx(1.08)


def test_markdown(files: tuple[str, str]) -> None:
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend, "-f", "markdown"))
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 4
    assert [c.strip() for c in lines[0].strip("|").split("|")] == CHANNEL_COLUMNS
    assert set(lines[1].replace("|", "").replace(":", "")) == {"-"}
    google = [c.strip() for c in lines[2].strip("|").split("|")]
    assert google[0].lower() == "google"
    assert google[1:] == EXPECTED_CSV["google"]


def test_table_has_ltv_cac_bars_unallocated_spend_and_totals(
    files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend, "-f", "table"))
    out = result.stdout
    assert "\x1b[" not in out
    assert "LTV:CAC" in out
    assert "1.2:1" in out  # google
    assert "1.1:1" in out  # facebook, 1.08
    assert "█" in out
    assert "Unallocated spend" in out
    assert "tiktok" in out
    assert "33.33" in out
    assert "116.67" in out
    assert "spend 663.33 = allocated 470.00 + unallocated 193.33" in out
    assert "new customers 5" in out
    assert "blended CAC 132.67" in out


def test_output_json_file(files: tuple[str, str]) -> None:
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend, "-o", "out.json"))
    assert result.stdout == ""
    data = json.loads(Path("out.json").read_text(encoding="utf-8"))
    assert list(data) == ["channels", "by_period", "unallocated", "totals"]
    assert data["totals"]["allocated"] == pytest.approx(470.0)
    assert [c["channel"].lower() for c in data["channels"]] == ORDER


def test_output_is_byte_identical_across_runs(files: tuple[str, str]) -> None:
    tx, spend = files
    first = ok(run("channels", tx, "--spend", spend, "-f", "json")).stdout
    assert ok(run("channels", tx, "--spend", spend, "-f", "json")).stdout == first


# ---- modes and configuration ------------------------------------------------------------------------

# Blended: Jan 300 over a, b -> 150; Feb 120+90 = 210 over c, d -> 105; Mar 50+33.33 = 83.33 over e;
# May 70 out of range. Allocated 593.33, unallocated 70.
#   google: cac (150+150+83.33)/3 = 127.78, ltv 140/127.78 = 1.10, net 0 - 80 + 116.67 = 36.67
#   facebook: cac 105, ltv 130/105 = 1.24, net 25; tiktok: its money went to March, unallocated 0
#   unattributed: cac 105, ltv 25/105 = 0.24, never pays back, net -80
BLENDED = {
    "google": ["510.00", "70.00", "3", "127.78", "140.00", "1.10", "56", "0.333333", "420.00", "0.82", "36.67"],
    "facebook": ["120.00", "0.00", "1", "105.00", "130.00", "1.24", "51", "1.000000", "130.00", "1.08", "25.00"],
    "unattributed": ["0.00", "0.00", "1", "105.00", "25.00", "0.24", "", "0.000000", "25.00", "", "-80.00"],
}  # fmt: skip


def test_cac_mode_blended(files: tuple[str, str]) -> None:
    tx, spend = files
    result = ok(run("channels", tx, "--spend", spend, "--cac-mode", "blended", "-f", "csv"))
    got = by_channel(csv_rows(result.stdout))
    for name, expected in BLENDED.items():
        assert got[name] == expected, name
    assert got["tiktok"][:3] == ["33.33", "0.00", "0"]
    assert "clvtool: spend 663.33 = allocated 593.33 + unallocated 70.00" in result.stderr.splitlines()


def test_spend_path_cac_mode_and_aliases_from_config(files: tuple[str, str]) -> None:
    tx, _ = files
    # The spend file calls facebook "FB Ads" and google "Google Search"; the config maps them.
    write(
        "ads.csv",
        "date,channel,spend\n2024-01,Google Search,300\n2024-02,FB Ads,120\n2024-02,google search,90\n",
    )
    write(
        "clvtool.yaml",
        "spend:\n  path: ads.csv\nanalysis:\n  cac_mode: blended\n"
        '  channel_aliases: {"FB Ads": facebook, "Google Search": google}\n',
    )
    result = ok(run("channels", tx, "-f", "json"))
    data = json.loads(result.stdout)
    # Blended: Jan 300 over a, b -> 150 each; Feb 120 + 90 = 210 over c, d -> 105 each; Mar none.
    got = {c["channel"].lower(): c for c in data["channels"]}
    assert set(got) == {"google", "facebook", "unattributed"}
    assert got["google"]["spend"] == pytest.approx(390.0)
    assert got["facebook"]["spend"] == pytest.approx(120.0)
    # google customers a, b (150) and e (March: no spend -> 0): 300 / 3
    assert got["google"]["cac"] == pytest.approx(100.0)
    assert got["unattributed"]["cac"] == pytest.approx(105.0)
    assert data["totals"]["allocated"] == pytest.approx(510.0)
    assert data["totals"]["unallocated"] == 0.0
    assert data["unallocated"] == []
    # The flag wins over the config.
    flagged = json.loads(ok(run("channels", tx, "--cac-mode", "channel", "-f", "json")).stdout)
    got = {c["channel"].lower(): c for c in flagged["channels"]}
    assert got["unattributed"]["cac"] == 0.0
    # Feb google search 90: no new google customer in Feb -> unallocated in channel mode
    assert flagged["totals"]["unallocated"] == pytest.approx(90.0)


def test_customers_table_overrides_attribution(files: tuple[str, str]) -> None:
    tx, spend = files
    # d (unattributed by its order) is declared a facebook customer: Feb facebook 120 -> c, d: 60 each.
    write("customers.csv", "customer_id,channel\nd,facebook\n")
    result = ok(run("channels", tx, "--spend", spend, "--customers", "customers.csv", "-f", "json"))
    got = {c["channel"].lower(): c for c in json.loads(result.stdout)["channels"]}
    assert "unattributed" not in got
    assert got["facebook"]["new_customers"] == 2
    assert got["facebook"]["cac"] == pytest.approx(60.0)
    assert got["facebook"]["mean_historic_clv"] == pytest.approx((130.0 + 25.0) / 2)


def test_customers_command_has_the_acquisition_columns(files: tuple[str, str]) -> None:
    tx, spend = files
    cols = "customer_id,channel,first_order,historic_clv,cac,net_value,payback_days,left_censored"
    result = ok(run("customers", tx, "--spend", spend, "--columns", cols, "--sort", "customer_id:asc"))
    rows = {r["customer_id"]: r for r in csv_rows(result.stdout)}
    # cac: a, b 150; c 120; d 0 (unattributed); e 50. Left-censored: first order before 2024-02-04.
    expected = {
        "a": ("150.00", "0.00", "56", "true"),
        "b": ("150.00", "-80.00", "", "true"),
        "c": ("120.00", "10.00", "51", "false"),
        "d": ("0.00", "25.00", "0", "true"),
        "e": ("50.00", "150.00", "0", "false"),
    }
    got = {k: (r["cac"], r["net_value"], r["payback_days"], r["left_censored"]) for k, r in rows.items()}
    assert got == expected


# ---- no spend, no customers ---------------------------------------------------------------------------


def test_without_spend_a_warning_and_empty_cac_columns(files: tuple[str, str]) -> None:
    tx, _ = files
    result = ok(run("channels", tx, "-f", "csv"))
    assert "warning" in result.stderr
    assert "spend" in result.stderr
    rows = csv_rows(result.stdout)
    assert [r["channel"].lower() for r in rows] == ["google", "facebook", "unattributed"]
    assert [r["new_customers"] for r in rows] == ["3", "1", "1"]
    # Without a spend file CAC is unknown, not zero: the warning itself says the columns are empty,
    # and `customers` without spend leaves cac, net_value and payback_days empty as well.
    empty = {c: [r[c] for r in rows] for c in ("cac", "ltv_cac", "roas", "median_payback_days", "net_value")}
    assert empty == {c: ["", "", ""] for c in empty}


def test_zero_new_customers_anywhere_is_not_a_division_by_zero() -> None:
    # Header-only transactions: no customers, so all spend is unallocated and a note says why CAC is empty.
    write("tx.csv", "customer_id,order_id,date,amount,channel\n")
    write("spend.csv", "date,channel,spend\n2024-01,google,300\n2024-02,meta,20.5\n")
    result = ok(run("channels", "tx.csv", "--spend", "spend.csv", "--as-of", "2024-03-31", "-f", "json"))
    data = json.loads(result.stdout)
    assert data["totals"]["new_customers"] == 0
    assert data["totals"]["spend"] == pytest.approx(320.5)
    assert data["totals"]["allocated"] == 0.0
    assert data["totals"]["unallocated"] == pytest.approx(320.5)
    assert data["totals"]["blended_cac"] is None
    assert all(c["cac"] is None for c in data["channels"])
    assert {(u["channel"], u["spend"]) for u in data["unallocated"]} == {("google", 300.0), ("meta", 20.5)}
    assert "no new customers" in result.stderr
    assert "CAC" in result.stderr


# ---- stdout/stderr split, audit line, --strict ------------------------------------------------------

BAD_SPEND = """\
date,channel,spend
2024-01,google,300
2024-01,google,300
not a date,google,5
2024-02,Facebook,a lot
2024-02,Facebook,120
2024-03,google,50
"""
# 6 rows: 1 identical duplicate (collapsed), 1 unparseable date, 1 unparseable amount -> 3 excluded.
# The used rows are the channel-mode example without Feb google, tiktok and May: total 470, all allocated.


def test_excluded_spend_rows_give_one_audit_line_on_stderr(files: tuple[str, str]) -> None:
    tx, _ = files
    write("bad.csv", BAD_SPEND)
    result = ok(run("channels", tx, "--spend", "bad.csv", "-f", "csv"))
    lines = result.stderr.splitlines()
    audit = [line for line in lines if "spend rows excluded" in line]
    assert len(audit) == 1
    assert audit[0].startswith("clvtool: 3 of 6 spend rows excluded:")
    assert "1 unparseable_date" in audit[0]
    assert "1 unparseable_amount" in audit[0]
    assert "1 duplicate_row" in audit[0]
    assert "clvtool: spend 470.00 = allocated 470.00 + unallocated 0.00" in lines
    # stdout stays clean CSV
    rows = csv_rows(result.stdout)
    assert list(rows[0]) == CHANNEL_COLUMNS
    assert by_channel(rows)["google"][:2] == ["350.00", "0.00"]  # 300 counted once, + 50


def test_stdout_is_data_only_and_quiet_silences_stderr(files: tuple[str, str]) -> None:
    tx, _ = files
    write("bad.csv", BAD_SPEND)
    loud = ok(run("channels", tx, "--spend", "bad.csv", "-f", "csv"))
    quiet = ok(run("channels", tx, "--spend", "bad.csv", "-f", "csv", "-q"))
    assert quiet.stderr == ""
    assert quiet.stdout == loud.stdout
    assert not any(line.startswith("clvtool:") for line in loud.stdout.splitlines())
    assert all(line.startswith("clvtool: ") for line in loud.stderr.splitlines())


def test_strict_with_excluded_spend_rows_exits_1(files: tuple[str, str]) -> None:
    tx, _ = files
    write("bad.csv", BAD_SPEND)
    result = fails(run("channels", tx, "--spend", "bad.csv", "--strict", "-f", "csv"))
    assert "--strict" in result.stderr
    assert "3 of 6 spend rows excluded" in result.stderr


def test_strict_with_clean_spend_succeeds(files: tuple[str, str]) -> None:
    tx, spend = files
    ok(run("channels", tx, "--spend", spend, "--strict", "-f", "csv"))


def test_rejects_file_lists_the_excluded_spend_rows(files: tuple[str, str]) -> None:
    tx, _ = files
    write("bad.csv", BAD_SPEND)
    ok(run("channels", tx, "--spend", "bad.csv", "--rejects", "rejects.csv", "-f", "csv"))
    rejects = [r for r in csv_rows(Path("rejects.csv").read_text(encoding="utf-8")) if r["file"] == "bad.csv"]
    assert sorted((int(r["line"]), r["reason"]) for r in rejects) == [
        (3, "duplicate_row"),
        (4, "unparseable_date"),
        (5, "unparseable_amount"),
    ]


# ---- bad spend input ---------------------------------------------------------------------------------


def test_negative_spend_is_a_one_line_error_naming_the_row(files: tuple[str, str]) -> None:
    tx, _ = files
    write("neg.csv", "date,channel,spend\n2024-01,google,300\n2024-02,google,-12.50\n")
    result = fails(run("channels", tx, "--spend", "neg.csv", "-f", "csv"))
    assert len(result.stderr.strip().splitlines()) == 1
    assert "neg.csv" in result.stderr
    assert "line 3" in result.stderr
    assert "negative" in result.stderr


def test_conflicting_duplicate_rows_are_an_error_naming_the_lines(files: tuple[str, str]) -> None:
    tx, _ = files
    write("dup.csv", "date,channel,spend\n2024-01,google,300\n2024-02,meta,1\n2024-01,google,310\n")
    result = fails(run("channels", tx, "--spend", "dup.csv", "-f", "csv"))
    assert len(result.stderr.strip().splitlines()) == 1
    assert "dup.csv" in result.stderr
    assert "lines 2, 4" in result.stderr


def test_missing_spend_column_is_an_error_naming_the_file(files: tuple[str, str]) -> None:
    tx, _ = files
    write("nospend.csv", "date,channel,clicks\n2024-01,google,300\n")
    result = fails(run("channels", tx, "--spend", "nospend.csv", "-f", "csv"))
    assert "nospend.csv" in result.stderr
    assert "'spend'" in result.stderr


def test_spend_currency_different_from_transactions_is_an_error_naming_the_file() -> None:
    write("tx.csv", "customer_id,date,amount,channel,currency\na,2024-01-05,100,google,USD\n")
    write("eur.csv", "date,channel,spend,currency\n2024-01,google,30,EUR\n")
    result = fails(run("channels", "tx.csv", "--spend", "eur.csv", "-f", "csv"))
    assert "eur.csv" in result.stderr
    assert "EUR" in result.stderr and "USD" in result.stderr


def test_same_currency_in_another_case_is_fine() -> None:
    write("tx.csv", "customer_id,date,amount,channel,currency\na,2024-01-05,100,google,usd\n")
    write("usd.csv", "date,channel,spend,currency\n2024-01,google,30,USD\n")
    result = ok(run("channels", "tx.csv", "--spend", "usd.csv", "-f", "csv"))
    assert by_channel(csv_rows(result.stdout))["google"][3] == "30.00"


def test_spend_for_a_channel_nobody_has_is_unallocated_never_lost(files: tuple[str, str]) -> None:
    tx, _ = files
    write("ghost.csv", "date,channel,spend\n2024-02,podcast,99.99\n2024-01,google,0.01\n")
    data = json.loads(ok(run("channels", tx, "--spend", "ghost.csv", "-f", "json")).stdout)
    assert data["unallocated"] == [
        {
            "channel": "podcast",
            "period": "2024-02",
            "spend": 99.99,
            "reason": data["unallocated"][0]["reason"],
        }
    ]
    assert "podcast" in [c["channel"] for c in data["channels"]]
    # 0.01 over a and b: 0.005 each; the totals still reconcile to the cent.
    assert data["totals"]["spend"] == pytest.approx(100.0)
    assert data["totals"]["allocated"] == pytest.approx(0.01)
    assert data["totals"]["unallocated"] == pytest.approx(99.99)
