"""Engine tests written for an SQLite file, run again on a PostgreSQL store.

The store tests and the engine's property tests take `store_at` and run on both
stores already (tests/conftest.py). The tests below name their store as a file
in pytest's `tmp_path` and open it with `engine.stores.open_store`; here they get
a folder whose files are PostgreSQL stores instead (`folder / "s.db"` is a fresh
schema of the test server, the same one each time the test names it), and must
pass unchanged: the lead-wide rules (caps across journeys, priorities, the lead
score, explain, a switch of version) and sends at a date read back from the
store behave the same on both.
"""

from __future__ import annotations

import re

import pytest

from . import test_lead_wide, test_time_dates

#: Tests whose only use of `tmp_path` is to name store files (those that build an SQLite file of an older
#: format, or run commands in the folder, stay SQLite's).
TESTS = [
    *(getattr(test_lead_wide, name) for name in (
        "test_two_journeys_in_the_same_second_send_one_message_and_defer_the_other",
        "test_without_the_lead_wide_cap_each_journey_caps_only_itself",
        "test_the_deferred_send_is_due_when_the_cap_allows_it",
        "test_higher_priority_sends_first_whatever_the_names_and_the_order_given",
        "test_at_one_release_the_higher_priority_waiting_send_goes_first",
        "test_a_held_send_is_cancelled_with_its_stage_not_sent_late",
        "test_explain_says_which_journeys_send_waited_and_why",
        "test_a_late_event_is_applied_at_the_leads_one_clock",
        "test_an_event_that_only_scores_the_lead_moves_its_clock",
        "test_what_an_event_makes_due_at_once_fires_before_the_next_journey_reacts",
        "test_points_earned_before_enrollment_count_in_the_lead_score_not_in_the_journeys",
        "test_the_lead_score_counts_each_event_once_however_many_journeys",
        "test_the_lead_score_decays_and_a_threshold_crossed_by_decay_fires_on_a_tick",
        "test_a_switch_of_version_reads_the_lead_score_and_explain_replays_it",
    )),
    test_time_dates.test_a_stored_webinar_lead_gets_its_reminders_from_the_store,
]


class PgFolder:
    """Stands in for `tmp_path` in a test that only names store files in it: each name is a PostgreSQL store."""

    def __init__(self, server, tag: str):
        self.server = server
        self.tag = tag
        self.stores: dict[str, str] = {}

    def __truediv__(self, name: str) -> str:
        if name not in self.stores:
            schema = re.sub(r"[^a-z0-9]+", "_", f"{self.tag}_{name}".lower())[-60:]
            self.stores[name] = self.server.create_schema("coltiva", schema)
        return self.stores[name]


@pytest.mark.parametrize("test", TESTS, ids=lambda t: f"{t.__module__.rsplit('.', 1)[-1]}.{t.__name__}")
def test_passes_on_postgresql(test, pg_server):
    test(PgFolder(pg_server, f"suite_{TESTS.index(test)}"))
