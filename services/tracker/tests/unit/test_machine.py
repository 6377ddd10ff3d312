from datetime import UTC, datetime, timedelta

import pytest

from mailstream.tracker.machine import is_machine, machine_agent

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
IPHONE_MAIL = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0",  # Apple Mail Privacy Protection
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        "Barracuda Sentinel (EE)",
        "python-requests/2.31",
        "",
        None,
    ],
)
def test_proxies_prefetchers_and_scanners_are_machines(agent):
    assert machine_agent(agent)


@pytest.mark.parametrize("agent", [FIREFOX, IPHONE_MAIL, "Microsoft Outlook 16.0.17029; Pro"])
def test_mail_clients_and_browsers_are_people(agent):
    assert not machine_agent(agent)


def test_a_head_request_is_a_machine():
    assert is_machine(user_agent=FIREFOX, method="HEAD", click=False, occurred_at=T0, delivered_at=None)


def test_a_click_within_seconds_of_delivery_is_a_link_scanner():
    soon = T0 + timedelta(seconds=2)
    assert is_machine(user_agent=FIREFOX, method="GET", click=True, occurred_at=soon, delivered_at=T0)


def test_a_click_later_is_a_person():
    late = T0 + timedelta(seconds=30)
    assert not is_machine(user_agent=FIREFOX, method="GET", click=True, occurred_at=late, delivered_at=T0)
    assert not is_machine(user_agent=FIREFOX, method="GET", click=True, occurred_at=late, delivered_at=None)


def test_an_open_soon_after_delivery_is_judged_by_its_agent_only():
    soon = T0 + timedelta(seconds=1)
    assert not is_machine(user_agent=FIREFOX, method="GET", click=False, occurred_at=soon, delivered_at=T0)
