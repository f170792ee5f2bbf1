"""The generated documentation pages agree with the code: a setting, table, command, metric or
webhook answer added without regenerating them (./scripts/docs --generate) fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main
from prometheus_client import REGISTRY
from pydantic import Field

import service.metrics  # noqa: F401  (its families join the registry)
from docs_gen import benchmarks, commands, metrics, settings, tables, webhooks
from docs_gen.__main__ import PAGES, stale
from service.cli import cli
from service.config import Settings, setting_variables
from service.db.types import metadata


def test_generated_pages_are_current() -> None:
    assert stale() == [], "the code changed: run ./scripts/docs --generate and commit the pages"


def test_every_setting_has_a_description() -> None:
    missing = [variable for variable, info in settings.fields() if not info.description]
    assert missing == []


def test_a_setting_added_without_docs_fails() -> None:
    class Undescribed(Settings):
        brand_new_knob: int = 3

    with pytest.raises(settings.MissingDescription, match="BRAND_NEW_KNOB"):
        settings.render(Undescribed)

    class Described(Settings):
        brand_new_knob: int = Field(default=3, description="A new knob.")

    page = settings.render(Described)
    assert "`BRAND_NEW_KNOB`" in page
    assert page != (Path(__file__).parent.parent / "docs/reference/settings.md").read_text()


def test_settings_page_names_every_variable() -> None:
    page = settings.render()
    for variable in setting_variables():
        assert f"`{variable}`" in page


def test_tables_page_has_every_table_and_column() -> None:
    page = tables.render()
    for table in metadata.sorted_tables:
        assert f"### `{table.name}`" in page
        for column in table.columns:
            assert f"`{column.name}`" in page


def test_commands_page_has_every_command_and_option() -> None:
    page = commands.render()
    group = typer.main.get_command(cli)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert f"## `clerk-replica {name}`" in page
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    # Hidden options (old spellings kept working) are left out, as from --help.
                    shown = not getattr(param, "hidden", False)
                    assert (f"`{opt}`" in page) == shown, (name, opt)


def test_metrics_found_in_the_source_include_the_registry() -> None:
    found = {family.name for family in metrics.families()}
    registered = {
        collected.name
        for collected in REGISTRY.collect()
        if collected.name.startswith("clerk_replica_")
    }
    assert registered and registered <= found
    # The gauges read from the database at scrape time are found too.
    assert "clerk_replica_inbox_oldest_pending_age_seconds" in found


def test_a_metric_in_any_module_is_listed(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "thing.py").write_text(
        'from prometheus_client import Counter\nX = Counter("x_things", "Things.", ["kind"])\n'
    )
    (family,) = metrics.families(tmp_path / "service")
    assert (family.name, family.kind, family.labels) == ("x_things", "counter", ("kind",))


def test_every_answer_of_the_webhook_endpoint_is_listed() -> None:
    page = webhooks.render()
    codes = {name for _status, name, _message in webhooks.refusals()}
    assert {"bad_signature", "stale_timestamp", "body_too_large", "bad_envelope"} <= codes
    for name in codes:
        assert f'"error": "{name}"' in page
    outcomes = {value for _status, _key, value in webhooks.answers()}
    assert outcomes == {"accepted", "duplicate", "ignored", "unavailable"}


def test_a_refusal_without_a_meaning_fails(tmp_path: Path) -> None:
    (tmp_path / "teapot.py").write_text('raise Refusal(418, "teapot", "short and stout")\n')
    assert webhooks.refusals(tmp_path) == [(418, "teapot", "short and stout")]
    with pytest.raises(KeyError, match="teapot"):
        webhooks.render(tmp_path)


def test_benchmarks_page_shows_results_or_not_yet_measured(tmp_path: Path) -> None:
    benches, results = tmp_path / "benches", tmp_path / "results"
    benches.mkdir()
    results.mkdir()
    (benches / "bench_alpha.py").write_text('"""Alpha throughput.\n\nMore."""\n')
    (benches / "bench_beta.py").write_text('"""Beta latency."""\n')
    recorded = {
        "benchmark": "bench_alpha",
        "title": "alpha benchmark, 2 cores",
        "date": "2026-12-07 01:00 UTC",
        "machine": {"cores": "2", "cpu": "Some CPU", "system": "Linux 6", "python": "3.11.9"},
        "header": ["figure", "value", "ratio"],
        "rows": [["events/s, median of 3 (spread 5%)", "1200", "0.80"]],
    }
    (results / "bench_alpha.json").write_text(json.dumps(recorded))
    page = benchmarks.render(benches, results)
    alpha, beta = page.split("## bench_alpha", 1)[1].split("## bench_beta")
    assert "| events/s, median of 3 (spread 5%) | 1200 | 0.80 |" in alpha
    assert "2026-12-07 01:00 UTC" in alpha and "Some CPU" in alpha
    assert "Not yet measured." in beta and "Not yet measured." not in alpha


def test_pages_are_written_where_mkdocs_reads_them() -> None:
    assert all(path.startswith("docs/") and path.endswith(".md") for path in PAGES)


def test_what_a_benchmark_records_is_what_the_page_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.benchmarks.measure import record

    benches, results = tmp_path / "benches", tmp_path / "results"
    benches.mkdir()
    (benches / "bench_gamma.py").write_text('"""Gamma."""\n')
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(results))
    written = record(
        "bench_gamma", "gamma benchmark", ("figure", "value", "ratio"), [("rate", "10", None)]
    )
    assert written == results / "bench_gamma.json"
    page = benchmarks.render(benches, results)
    assert "| rate | 10 |  |" in page and "gamma benchmark" in page
    assert "Not yet measured." not in page


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_event_types_to_subscribe_to_are_every_replicated_one(page: str) -> None:
    from service.kinds.registry import ROUTES

    text = (Path(__file__).parent.parent / page).read_text()
    prefixes = {event_type.split(".")[0] for event_type in ROUTES}
    missing = sorted(p for p in prefixes if f"`{p}.*`" not in text)
    assert missing == [], f"{page} does not tell Clerk to send {missing}"
